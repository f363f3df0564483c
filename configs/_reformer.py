"""The schema shared by the language-model configs (``hebbjax train``): every field, with a
comment on its meaning; ``duplication`` and ``bytes_lm`` set only the values that differ."""

import ml_collections


def base_config(*, task: str, length: int, vocab_size: int, batch_size: int,
                steps: int) -> ml_collections.ConfigDict:
  """Every field of a ``hebbjax train`` config. ``steps`` sets ``run.num_steps`` and the
  learning-rate schedule's length ``optim.schedule_steps`` alike."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.task = task            # "duplication", "bytes" or "masked_bytes" (bidirectional)
  config.data.length = length        # tokens the model reads
  config.data.vocab_size = vocab_size
  config.data.batch_size = batch_size

  config.model = ml_collections.ConfigDict()
  config.model.attention = "lsh"     # a causal kind of hebbjax.layers.ATTENTION_KINDS (a masked
  # task: any kind); a list of
  # kinds is cycled over the layers (["local_qkv", "lsh"]), and the attention fields below may
  # then be lists too, one value per kind of that list.
  config.model.linear_features = 256  # random features of attention="linear" (FAVOR+)
  config.model.linformer_k = 256    # rows the keys/values are projected to (attention="linformer")
  config.model.linformer_per_head = False  # each head its own projections (default: shared)
  config.model.dim = 256
  config.model.depth = 2
  config.model.num_heads = 4
  config.model.ff_hidden = 1024
  config.model.n_rounds = 2
  config.model.chunk_length = 64
  config.model.n_buckets = 0         # 0: buckets_per_chunk per chunk (factored above 64)
  config.model.buckets_per_chunk = 2  # the paper's: the mean bucket holds half a chunk
  config.model.chunks_before = 1     # key chunks a query chunk sees before its own (sorted)
  config.model.chunks_after = 0      # ... and after it
  config.model.concat_rounds = False  # the paper's code: rounds' sorted sequences concatenated
  config.model.score_scale = 0.0     # multiplies q·k; 0: 1/sqrt(head dim) (trax/HF: 1.0)
  config.model.attention_dropout = 0.0  # on the attention weights
  config.model.embedding_dropout = 0.0  # on token and positional embeddings
  config.model.stream_merge = "mean"  # "mean" of the two streams, or "concat" (trax/HF)
  config.model.tie_embeddings = False  # head = transposed token embedding (mean streams only)
  config.model.ff_chunk_length = 0   # 0: unchunked
  config.model.dropout_rate = 0.0
  config.model.reversible = True
  config.model.head_batch = 0        # heads attended at once; 0: all
  # "auto": the Pallas kernels on a GPU/TPU where they are verified, jax.lax elsewhere (today:
  # jax.lax everywhere); "xla" or "" (older runs): jax.lax; "pallas": the Pallas kernels.
  config.model.attention_implementation = "auto"
  config.model.block_chunks = 1      # chunks per Pallas program
  config.model.positions = "axial"   # "axial" (two short factors) or "table" (a row each)
  config.model.axial_shape = []      # the axial factors ([]: as model.positions says)
  config.model.axial_dims = []       # their widths, summing to dim ([]: an even split)
  config.model.out_bias = True       # attention output projections have a bias (trax/HF: no)
  config.model.activation = "gelu"   # feed-forward: gelu (tanh approx.), gelu_exact, relu, ...
  config.model.norm_eps = 1e-6       # every LayerNorm's epsilon (HF: 1e-12)
  config.model.head_dim = 0          # width per head; 0: dim / num_heads

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-3
  config.optim.warmup_steps = 50
  config.optim.final_lr_fraction = 0.1
  config.optim.schedule_steps = steps   # warm-up + cosine decay length (keep = run.num_steps)
  config.optim.clip_norm = 1.0
  config.optim.weight_decay = 0.01

  config.run = ml_collections.ConfigDict()
  config.run.num_steps = steps
  config.run.eval_every = 100
  config.run.eval_batches = 2
  config.run.checkpoint_every = 100
  config.run.time_budget_s = 0.0     # stop after this many seconds of training (0: none)
  config.run.max_checkpoints = 2
  # Devices per process (hebbjax.run.devices) the batch is split over: "auto" (CPU: one per core;
  # GPU/TPU: every device; as many as split data.batch_size evenly) or a number (1: one device).
  config.run.devices = ml_collections.FieldReference("auto", field_type=object)
  return config
