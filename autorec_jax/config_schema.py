r"""The config schema: every field with its type and default, documented.

The files in configs/ start from `base_config()` and change defaults only, so a field
means the same in every experiment and every field can be overridden on the command
line (`--config.model.hidden='(512,512,1024)'`).

Fields:
  seed: model initialisation, dropout and batch shuffling (the split has its own).
  data.name: movielens_100k | movielens_1m | movielens_10m | movielens_20m |
    movielens_25m | movielens_latest_small | jester | csv | netflix (a converted
    time split, see data.time_split).
  data.path: a ratings file, archive or directory; unset = look under
    $AUTOREC_DATA_DIR, then ~/.cache/autorec_jax, downloading when allowed.
  data.test_path: a predefined test file (e.g. ML-100K's u1.test); unset = split.
  data.download: download a public data set from its official site when missing.
  data.duplicates: repeated (user, item) pairs: error | keep_last | mean.
  data.csv_delimiter / data.csv_header / data.csv_columns: generic text files
    (unset delimiter = sniff; header auto|yes|no; columns: field indices of
    user,item,rating[,time], empty = named by the header (userId, movie_id, rating,
    timestamp ...) or else the first three fields);
    data.csv_string_ids keeps non-numeric ids as strings (else ids must be integers).
  data.rating_min / data.rating_max: the rating scale (unset = the data set's).
  data.time_split: for data.name=netflix, the converted time split to train on
    (full | 3m | 6m | 1y); its valid and test halves are used as given.
  data.seed: the split's seed.
  data.test_fraction: share of ratings held out for test by a random split.
  data.num_folds / data.fold: k-fold cross-validation (num_folds 0 = random split).
  data.valid_fraction: share of the train part carved out for model selection.
  model.orientation: user (U-AutoRec: rows are users) or item (I-AutoRec).
  model.hidden: encoder widths; the decoder mirrors them.
  model.hidden_fractions: widths as fractions of the input width instead (e.g.
    (0.1, 0.0833) for Strub & Mary's n/10, n/12); empty = use model.hidden.
  model.activation: selu | elu | lrelu | relu | relu6 | sigmoid | tanh | swish | identity.
  model.output_activation: apply the activation on the output layer too.
  model.dropout: drop probability on the code layer.
  model.tied: constrained decoder (transposed encoder kernels).
  model.kernel_init: xavier | fan_in.
  model.input_path: auto | dense | sparse: how training computes the first and last
    layers: dense matmuls, or native CPU kernels over the observed entries only
    (autorec_jax/sparse_input.py: the first layer from the entries, the loss and the
    output layer's gradients at them; the dense output only as a re-feeding pass's
    input; one CPU device; built with the system C++ compiler on first use; same
    results to float tolerance; README Speed has the timings). auto (default) is
    sparse where the kernels can run and at most 10% of the train matrix is stored,
    else dense.
  model.compute_dtype: float32 | bfloat16: operand type of the layers' matrix
    products (float32 accumulation; parameters, optimizer, loss stay float32).
    bfloat16 halves the products' memory traffic on GPUs/TPUs and CPUs with bf16
    units; see experiments/benchmark.py for its speed and the README for its RMSE.
  model.kind: autoencoder | svd | als (Strub & Mary's matrix-factorization baselines,
    autorec_jax.baselines; SVD uses optim.*, train.batch_size = ratings per step;
    train.num_epochs = SVD epochs or ALS-WR iterations).
  model.rank: latent factors per user and item (svd, als).
  model.reg: lambda: per-rating L2 for SVD, weighted lambda*n_u for ALS-WR.
  model.use_biases: remove train user/item means before fitting (the paper's
    preprocessing) and learn regularised user/item biases on top (SVD: by gradient;
    ALS-WR: solved with the factors); False: global mean only, no biases.
  preprocess.scale: map ratings to [-1, 1] for the model (Strub & Mary).
  preprocess.bias: none | row: remove each row's train mean (the user's for a
    U-encoder, the item's for a V-encoder); added back before metrics.
  noise.masking, noise.salt_pepper, noise.gaussian: fractions of the known input
    entries forced to 0, forced to the scale's min or max, or given Gaussian noise
    (disjoint; their sum <= 1); noise.gaussian_std: that noise's std (model units).
  loss.alpha, loss.beta: weights of the squared errors on corrupted and on
    uncorrupted known entries (Strub & Mary's denoising loss; 1, 1 = masked MSE).
  stacked.enabled: layer-wise training (Strub & Mary figure 1) of a two-hidden-layer
    model: train the outer autoencoder, then an inner one on its clean codes, then
    fine-tune the assembled network with the main optim/loss/noise settings.
  stacked.outer.*, stacked.inner.*: each stage's num_epochs, learning_rate,
    decay_rate (inverse-time, per epoch), weight_decay, alpha, beta, masking,
    salt_pepper, gaussian, gaussian_std (their table 1).
  optim.name: sgd | adam | adamw | rmsprop | adagrad.
  optim.learning_rate, optim.momentum, optim.nesterov, optim.beta1, optim.beta2,
    optim.eps: the optimizer's own hyperparameters.
  optim.weight_decay: L2 on kernels (decoupled for adamw).
  optim.schedule: constant | multistep | exponential; optim.decay_rate and
    optim.decay_epochs (multistep boundaries, in epochs).
  optim.grad_clip_norm: clip the global gradient norm (unset = no clipping).
  optim.fused: do SGD with momentum as one native pass per parameter array where it
    is the whole update (no Nesterov, weight decay or clipping; one CPU device;
    autorec_jax.fused_sgd): the same arithmetic as optax, DeepRec epochs 6-8% faster;
    on the sparse path the first and output kernels' gradients are then summed inside
    the update, never built (same parameters; epochs 3-7% faster).
    False: always optax.
  train.num_epochs, train.batch_size (rows per step, all devices together).
  train.refeed_steps: dense re-feeding passes per step (DeepRec: 1).
  train.eval_every_epochs: validation (and best-checkpoint choice) interval.
  train.log_every_steps: how often losses are fetched from the device.
  train.prefetch: batches densified ahead on a background thread.
  train.progress_bar: show a progress bar with live loss and rows/s.
  train.on_nan: stop | rollback: on a NaN/inf loss stop with a message (the best
    checkpoint stays intact), or restore the latest good checkpoint and go on with
    the learning rate times train.rollback_lr_factor, at most train.max_rollbacks times.
  ckpt.every_steps: also checkpoint every this many steps inside an epoch (0 = only at
    epoch ends); SIGTERM/SIGINT always save one before stopping.
  eval.batch_size: rows per evaluation step.
  eval.clip_predictions: clip predictions to the rating scale before metrics.
  eval.ranking_ks: cut-offs k of NDCG@k, Recall@k, Precision@k and MAP@k (empty = no
    ranking metrics). Candidates exclude the user's train items.
  eval.relevance_threshold: a held-out rating >= this is relevant (unset = 3/4 up the
    rating scale: 4 on 1..5).
"""

from ml_collections import config_dict

placeholder = config_dict.placeholder


def base_config() -> config_dict.ConfigDict:
  """Every field with its default; data-set configs override what they need."""
  cfg = config_dict.ConfigDict()
  cfg.seed = 0

  cfg.data = config_dict.ConfigDict()
  cfg.data.name = "movielens_1m"
  cfg.data.path = placeholder(str)
  cfg.data.test_path = placeholder(str)
  cfg.data.download = True
  cfg.data.duplicates = "error"
  cfg.data.csv_delimiter = placeholder(str)
  cfg.data.csv_header = "auto"
  cfg.data.csv_columns = ()
  cfg.data.csv_string_ids = False
  cfg.data.rating_min = placeholder(float)
  cfg.data.rating_max = placeholder(float)
  cfg.data.time_split = "full"
  cfg.data.seed = 0
  cfg.data.test_fraction = 0.1
  cfg.data.num_folds = 0
  cfg.data.fold = 0
  cfg.data.valid_fraction = 0.05

  cfg.model = config_dict.ConfigDict()
  cfg.model.orientation = "item"
  cfg.model.hidden = (500,)
  cfg.model.hidden_fractions = ()
  cfg.model.activation = "sigmoid"
  cfg.model.output_activation = False
  cfg.model.dropout = 0.0
  cfg.model.tied = False
  cfg.model.kernel_init = "xavier"
  cfg.model.compute_dtype = "float32"
  cfg.model.input_path = "auto"
  cfg.model.kind = "autoencoder"
  cfg.model.rank = 15
  cfg.model.reg = 0.02
  cfg.model.use_biases = False

  cfg.preprocess = config_dict.ConfigDict()
  cfg.preprocess.scale = False
  cfg.preprocess.bias = "none"

  cfg.noise = config_dict.ConfigDict()
  cfg.noise.masking = 0.0
  cfg.noise.salt_pepper = 0.0
  cfg.noise.gaussian = 0.0
  cfg.noise.gaussian_std = 0.0

  cfg.loss = config_dict.ConfigDict()
  cfg.loss.alpha = 1.0
  cfg.loss.beta = 1.0

  cfg.optim = config_dict.ConfigDict()
  cfg.optim.name = "adam"
  cfg.optim.learning_rate = 1e-3
  cfg.optim.momentum = 0.0
  cfg.optim.nesterov = False
  cfg.optim.beta1 = 0.9
  cfg.optim.beta2 = 0.999
  cfg.optim.eps = 1e-8
  cfg.optim.weight_decay = 0.0
  cfg.optim.schedule = "constant"
  cfg.optim.decay_rate = 1.0
  cfg.optim.decay_epochs = (0,)
  cfg.optim.grad_clip_norm = placeholder(float)
  cfg.optim.fused = True

  cfg.stacked = config_dict.ConfigDict()
  cfg.stacked.enabled = False
  for stage in ("outer", "inner"):
    st = config_dict.ConfigDict()
    st.num_epochs = 10
    st.learning_rate = 0.03
    st.decay_rate = 0.1
    st.weight_decay = 0.03
    st.alpha = 1.0
    st.beta = 1.0
    st.masking = 0.0
    st.salt_pepper = 0.0
    st.gaussian = 0.0
    st.gaussian_std = 0.0
    cfg.stacked[stage] = st

  cfg.train = config_dict.ConfigDict()
  cfg.train.num_epochs = 100
  cfg.train.batch_size = 64
  cfg.train.refeed_steps = 0
  cfg.train.eval_every_epochs = 1
  cfg.train.log_every_steps = 50
  cfg.train.prefetch = 2
  cfg.train.progress_bar = True
  cfg.train.on_nan = "stop"
  cfg.train.rollback_lr_factor = 0.5
  cfg.train.max_rollbacks = 3

  cfg.ckpt = config_dict.ConfigDict()
  cfg.ckpt.every_steps = 0

  cfg.eval = config_dict.ConfigDict()
  cfg.eval.batch_size = 512
  cfg.eval.clip_predictions = True
  cfg.eval.ranking_ks = (10,)
  cfg.eval.relevance_threshold = placeholder(float)
  return cfg
