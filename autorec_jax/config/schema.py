"""The config schema: every field with its type and default.

The files in configs/ start from `base_config()` and change defaults only, so a field
means the same in every experiment and every field can be overridden on the command
line (`--config.model.hidden='(512,512,1024)'`). Each field is documented by the
comment next to it, with its allowed values and the value that turns it off where
there is one; docs/configs.md is the same reference as a table (types, defaults,
allowed values, units). `autorec_jax.config.domains` holds the domains and
`autorec_jax.config.checks` enforces them before any work (NaN and infinity are never
allowed; ints are not bools and bools not ints).
"""

from ml_collections import config_dict

placeholder = config_dict.placeholder


def base_config() -> config_dict.ConfigDict:
  """Every field with its default; data-set configs override what they need."""
  cfg = config_dict.ConfigDict()
  # Model initialisation, dropout, input noise and batch shuffling (the split has
  # its own data.seed); an int in [0, 2**32 - 1] (JAX keeps 32 bits of a seed).
  cfg.seed = 0

  # --- Data: what to read, and how to split it. ---
  cfg.data = config_dict.ConfigDict()
  # movielens_100k | movielens_1m | movielens_10m | movielens_20m | movielens_25m |
  # movielens_latest_small | jester | csv (any delimited text; needs data.path) |
  # netflix (a split converted by `python -m autorec_jax.data.netflix`) | monti (a
  # rating matrix with train/test masks in a .mat or .npz; needs data.path).
  cfg.data.name = "movielens_1m"
  # A ratings file, archive or folder (`~` expanded); unset = look under
  # $AUTOREC_DATA_DIR, then ~/.cache/autorec_jax, downloading when allowed.
  cfg.data.path = placeholder(str)
  # A predefined test file (e.g. ML-100K's u1.test); unset = split data.path. It
  # chooses the test part, so data.num_folds must stay 0 and data.test_fraction at its
  # default (or 0).
  cfg.data.test_path = placeholder(str)
  # Download a public data set from its official site when it is missing (checked
  # against its sha256).
  cfg.data.download = True
  # Repeated (user, item) pairs: error | keep_last | mean.
  cfg.data.duplicates = "error"
  # data.name=csv: the field delimiter (one ASCII character that cannot be part of a
  # number or id, i.e. not a letter, digit, . - + _ or ", or '::', 'tab' or
  # 'whitespace'); unset = sniff it from the first data line. The csv_* fields are
  # refused for other data sets, which would ignore them.
  cfg.data.csv_delimiter = placeholder(str)
  # data.name=csv: auto | yes | no: whether the first line is a header.
  cfg.data.csv_header = "auto"
  # data.name=csv: field indices of user, item, rating[, timestamp]; empty = named by
  # the header (userId, movie_id, rating, timestamp ...), else the first three fields.
  cfg.data.csv_columns = ()
  # data.name=csv: keep non-numeric ids as strings (else ids must be integers).
  cfg.data.csv_string_ids = False
  # The rating scale (ratings outside it are an error; predictions are clipped to
  # it), finite, rating_min < rating_max; unset = the data set's own (MovieLens 1..5
  # or 0.5..5, Jester -10..10; csv: the smallest and largest rating read). Netflix's
  # is always 1..5 (setting them is refused).
  cfg.data.rating_min = placeholder(float)
  cfg.data.rating_max = placeholder(float)
  # data.name=netflix: the converted time split to train on (full | 3m | 6m | 1y);
  # its valid and test halves are used as given, so data.test_path, num_folds,
  # seed, rating_min/max and duplicates must stay unset or at their defaults, and
  # test_fraction and valid_fraction at their defaults or 0.
  cfg.data.time_split = "full"
  # The split's seed (independent of `seed`), an int in [0, 2**32 - 1].
  cfg.data.seed = 0
  # Share of the ratings held out for test by a random split, in [0, 1); 0 = no
  # test part (the test metrics are null in results.json, "n/a" on the console).
  # With data.num_folds or data.test_path it must stay at its default.
  cfg.data.test_fraction = 0.1
  # k-fold cross-validation: num_folds 0 = random split, else >= 2 folds (at most
  # the number of ratings), and data.fold in [0, num_folds) is the test fold (0
  # without folds).
  cfg.data.num_folds = 0
  cfg.data.fold = 0
  # Share of the train part carved out for validation (model selection), in [0, 1);
  # 0 = no validation part (the last epoch's model counts as the best). It has its
  # own seed, so changing it never changes the test part. Settings that leave no
  # train rating are refused when the data is split.
  cfg.data.valid_fraction = 0.05

  # --- Model. ---
  cfg.model = config_dict.ConfigDict()
  # user (U-AutoRec: a row per user, its ratings of every item) or item (I-AutoRec:
  # a row per item, its ratings by every user).
  cfg.model.orientation = "item"
  # Encoder widths (ints >= 1); the last is the code and the decoder mirrors the rest.
  cfg.model.hidden = (500,)
  # Widths as fractions of the input width instead, each in (0, 1] (e.g.
  # (0.1, 0.0833) for Strub & Mary's n/10, n/12); empty = use model.hidden.
  cfg.model.hidden_fractions = ()
  # selu | elu | lrelu | relu | relu6 | sigmoid | tanh | swish | identity, after
  # every hidden layer.
  cfg.model.activation = "sigmoid"
  # Apply the activation on the output layer too (else the output is linear).
  cfg.model.output_activation = False
  # Drop probability on the code layer while training, in [0, 1) (0 = none).
  cfg.model.dropout = 0.0
  # Constrained decoder: the decoder's kernels are the encoder's, transposed.
  cfg.model.tied = False
  # xavier (Glorot uniform, DeepRec) | fan_in (U[-1/sqrt(fan_in), 1/sqrt(fan_in)],
  # Strub & Mary).
  cfg.model.kernel_init = "xavier"
  # float32 | bfloat16: operand type of the layers' matrix products (float32
  # accumulation; parameters, optimizer state and loss stay float32).
  cfg.model.compute_dtype = "float32"
  # auto | dense | sparse: how training computes the first and output layers:
  # dense matrix products, or native CPU kernels over the observed entries only
  # (autorec_jax/native/sparse_input.py; one CPU device; built with the system C++
  # compiler on first use; the same results to float rounding). auto is sparse
  # where the kernels can run and at most 10% of the train matrix is stored, else
  # dense. docs/performance.md has the timings.
  cfg.model.input_path = "auto"
  # autoencoder | kernel (kernelized autoencoder, kernelNet / GLocal-K: model.kernel)
  # | svd | als (Strub & Mary's matrix-factorization baselines,
  # autorec_jax.training.factorization: SVD uses optim.*, train.batch_size =
  # ratings per step, train.num_epochs = SVD epochs or ALS-WR iterations).
  cfg.model.kind = "autoencoder"
  # svd, als: latent factors per user and per item (>= 1).
  cfg.model.rank = 15
  # svd, als: lambda (>= 0; 0 = none): per-rating L2 for SVD, weighted lambda * n_u
  # for ALS-WR. Unset = scaled with the data: c * sqrt(model.rank / n), n the smaller
  # of the train part's mean ratings per user and per item, c = 0.08 (ALS-WR) or 0.06
  # (SVD); 0.03 on MovieLens-1M, 2-3x more on sparser data, where a fixed small
  # lambda overfits.
  cfg.model.reg = placeholder(float)
  # svd, als: remove the train user/item means before fitting (the paper's
  # preprocessing) and learn regularised user/item biases on top (SVD: by gradient;
  # ALS-WR: solved with the factors); False: global mean only, no biases.
  cfg.model.use_biases = False

  # kernel (kernelNet / GLocal-K, autorec_jax.models.kernel_net): model.hidden lists
  # every hidden layer (not mirrored), then an output layer back to the input width
  # (identity unless output_activation); trained full-batch by L-BFGS (lbfgs.*).
  cfg.model.kernel = config_dict.ConfigDict()
  # kernel: d, the dimension of each unit's point (>= 0; 0 = plain dense layers).
  cfg.model.kernel.dim = 5
  # kernel: which layers carry the kernel, indices into model.hidden plus
  # len(model.hidden) for the output layer (ints >= 0); empty = every layer.
  cfg.model.kernel.layers = ()
  # kernel: lambda_2/2 * sum(W^2), the L2 penalty per layer (>= 0), at the
  # reference size (see scale_lambdas).
  cfg.model.kernel.lambda_2 = 60.0
  # kernel: lambda_s/2 * sum(w_hat^2), the kernel's sparsity penalty per layer (>= 0).
  cfg.model.kernel.lambda_s = 0.013
  # kernel: scale both lambdas by sqrt(train ratings / 900,000), so values chosen on
  # MovieLens-1M transfer to other sizes (docs/models.md); False: use them as given.
  cfg.model.kernel.scale_lambdas = True
  # kernel: GLocal-K's global kernel (autorec_jax.models.global_kernel): after
  # lbfgs.pretrain_rounds rounds of pre-training, the network is fine-tuned on
  # relu(R conv K), K a size x size kernel made from the network's own outputs.
  cfg.model.global_kernel = config_dict.ConfigDict()
  cfg.model.global_kernel.enabled = False
  # The global kernel's side (an odd int >= 1).
  cfg.model.global_kernel.size = 3
  # K = dot_scale * p @ C (> 0).
  cfg.model.global_kernel.dot_scale = 0.5

  # --- Preprocessing, computed on the train part and undone before every metric. ---
  cfg.preprocess = config_dict.ConfigDict()
  # Map ratings to [-1, 1] for the model (Strub & Mary): True | False; unset = by
  # the rating scale: as they are on a 1..5-like scale (starting at >= 0 and 3 to 6
  # wide: 1..5, 0.5..5, 1..7), where the defaults were tuned; scaled otherwise
  # (1..10, 1..100, Jester's -10..10), where raw ratings pose the defaults another
  # problem.
  cfg.preprocess.scale = placeholder(bool)
  # none | row | auto: remove each row's train mean (the user's for a U-encoder,
  # the item's for a V-encoder); auto: row on sparse data (fewer than 32 train
  # ratings per user and item, geometric mean), none otherwise
  # (training.data_defaults.choose_sparsity).
  cfg.preprocess.bias = "none"

  # --- Input corruption of the known entries while training (Strub & Mary). ---
  # Fractions of the known input entries forced to 0 (masking), forced to the
  # scale's min or max (salt_pepper) or given Gaussian noise (gaussian): each in
  # [0, 1] (0 = none), disjoint, their sum <= 1. gaussian_std: that noise's std, in
  # model units (>= 0).
  cfg.noise = config_dict.ConfigDict()
  cfg.noise.masking = 0.0
  cfg.noise.salt_pepper = 0.0
  cfg.noise.gaussian = 0.0
  cfg.noise.gaussian_std = 0.0

  # --- Loss: Strub & Mary's denoising loss; alpha = beta = 1 is the masked MSE. ---
  cfg.loss = config_dict.ConfigDict()
  # Weight of the squared errors on corrupted known entries (>= 0).
  cfg.loss.alpha = 1.0
  # Weight of the squared errors on the other known entries (>= 0, not both 0).
  cfg.loss.beta = 1.0

  # --- Optimizer and learning-rate schedule. ---
  cfg.optim = config_dict.ConfigDict()
  # sgd | adam | adamw | rmsprop | adagrad.
  cfg.optim.name = "adam"
  # Learning rate per update (> 0), before the schedule.
  cfg.optim.learning_rate = 1e-3
  # sgd, rmsprop: momentum in [0, 1) (0 = none).
  cfg.optim.momentum = 0.0
  # sgd, rmsprop: Nesterov momentum.
  cfg.optim.nesterov = False
  # adam, adamw: first-moment decay in [0, 1); beta2: second-moment decay in [0, 1)
  # (rmsprop: its decay); eps: the denominator's epsilon, > 0 (adam, adamw, rmsprop,
  # adagrad).
  cfg.optim.beta1 = 0.9
  cfg.optim.beta2 = 0.999
  cfg.optim.eps = 1e-8
  # L2 on kernels, not biases (>= 0, 0 = none; decoupled weight decay for adamw).
  cfg.optim.weight_decay = 0.0
  # constant | multistep (times decay_rate at each epoch in decay_epochs, DeepRec's)
  # | exponential (times decay_rate per epoch, smoothly) | inverse_time
  # (learning_rate / (1 + decay_rate * epoch)). Counted in train steps, so
  # re-feeding updates share their step's rate.
  cfg.optim.schedule = "constant"
  # The schedule's factor, > 0 (1 = no decay); exponential: in (0, 1]; multistep: a
  # factor above 1 raises the rate at those epochs (a warm-up step).
  cfg.optim.decay_rate = 1.0
  # multistep: the epochs (ints >= 0) at whose start the rate is multiplied by
  # decay_rate.
  cfg.optim.decay_epochs = (0,)
  # Clip the global gradient norm to this (> 0); unset = no clipping (0 is refused:
  # it would not mean "off").
  cfg.optim.grad_clip_norm = placeholder(float)
  # Do SGD with momentum as one native pass per parameter array where it is the
  # whole update (no Nesterov, weight decay or clipping; one CPU device;
  # autorec_jax/native/fused_sgd.py): the same arithmetic and state as optax. On
  # the sparse path the first and output kernels' gradients are then summed inside
  # the update, never built (the same parameters). False: always optax.
  cfg.optim.fused = True

  # --- Layer-wise stacked training (Strub & Mary figure 1). ---
  cfg.stacked = config_dict.ConfigDict()
  # Train a two-hidden-layer model in stages: the outer autoencoder, then an inner
  # one on its clean codes, then the assembled network fine-tuned with the main
  # optim/loss/noise settings.
  cfg.stacked.enabled = False
  # Each pre-training stage's own settings (their table 1), for "outer" and "inner":
  # num_epochs (>= 1); learning_rate (> 0); decay_rate (> 0: an inverse_time
  # schedule, per epoch); weight_decay (>= 0); alpha and beta (as loss.*); masking,
  # salt_pepper, gaussian and gaussian_std (as noise.*).
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

  # --- Full-batch L-BFGS (model.kind=kernel; autorec_jax.training.full_batch). ---
  # A round is `iterations` L-BFGS iterations (optax) over the whole train matrix from a
  # fresh history, then validation and a checkpoint; train.num_epochs counts rounds.
  cfg.lbfgs = config_dict.ConfigDict()
  # Iterations per round (>= 1).
  cfg.lbfgs.iterations = 50
  # Correction pairs kept (the history; scipy L-BFGS-B calls it maxcor, >= 1).
  cfg.lbfgs.memory = 10
  # model.global_kernel.enabled: pre-training rounds (>= 1) of pretrain_iterations
  # (>= 1) before the train.num_epochs fine-tuning rounds.
  cfg.lbfgs.pretrain_rounds = 20
  cfg.lbfgs.pretrain_iterations = 50

  # --- Training loop. ---
  cfg.train = config_dict.ConfigDict()
  # Epochs (>= 1); the only field that may change when resuming (to extend a run).
  cfg.train.num_epochs = 100
  # Rows per step, over all devices together (>= 1, a multiple of the device count).
  cfg.train.batch_size = 64
  # Dense re-feeding passes per step (DeepRec section 2.2; 0 = none).
  cfg.train.refeed_steps = 0
  # Validation (and best-checkpoint choice) every this many epochs (>= 1).
  cfg.train.eval_every_epochs = 1
  # Early stopping: stop at the first validation pass that finds no better
  # validation RMSE than this many epochs (or more) before it (>= 0; 0 = train all
  # train.num_epochs, which is otherwise a cap). May change when resuming. Without a
  # validation part it does nothing.
  cfg.train.patience = 10
  # How often, in steps, losses are fetched from the device and logged (>= 1).
  cfg.train.log_every_steps = 50
  # Batches prepared ahead on a background thread (0 = none).
  cfg.train.prefetch = 2
  # One progress bar for the whole run (shown only when stderr is a terminal).
  cfg.train.progress_bar = True
  # stop | rollback: on a NaN/inf loss stop with a message (the best checkpoint
  # stays intact), or restore the latest good checkpoint and go on with the
  # learning rate times rollback_lr_factor (in (0, 1)), at most max_rollbacks times
  # (>= 0; 0 = stop at the first NaN/inf loss, as on_nan=stop).
  cfg.train.on_nan = "stop"
  cfg.train.rollback_lr_factor = 0.5
  cfg.train.max_rollbacks = 3

  # --- Checkpoints. ---
  cfg.ckpt = config_dict.ConfigDict()
  # Also checkpoint every this many steps inside an epoch (0 = only at epoch ends);
  # SIGTERM/SIGINT always save one before stopping.
  cfg.ckpt.every_steps = 0
  # Write an epoch-end checkpoint only when this many seconds (>= 0; 0 = after every
  # epoch) have passed since the last write, and always at the last epoch: each
  # write costs a fixed 0.1-0.5 s. A better validation state in between is held in
  # host memory and written first at the next write, so the best is never lost; a
  # killed run resumes from the last write and repeats the epochs since (to the same
  # results).
  cfg.ckpt.every_secs = 60.0

  # --- Evaluation. ---
  cfg.eval = config_dict.ConfigDict()
  # Rows per evaluation step (>= 1, a multiple of the device count).
  cfg.eval.batch_size = 512
  # Clip predictions to the rating scale before metrics.
  cfg.eval.clip_predictions = True
  # Cut-offs k of NDCG@k, Recall@k, Precision@k and MAP@k, each an int >= 1 (empty =
  # no ranking metrics; a k past the number of items ranks them all). Candidates
  # exclude the user's train items.
  cfg.eval.ranking_ks = (10,)
  # A held-out rating >= this is relevant (finite); unset = 3/4 up the rating scale
  # (4 on 1..5).
  cfg.eval.relevance_threshold = placeholder(float)
  # Validation ranking metrics every this many epochs (>= 0; 0 = once, on the best
  # checkpoint at the end): a ranking pass can cost more than an epoch of training.
  # The test part's ranking metrics are always computed, on the best checkpoint.
  cfg.eval.ranking_every_epochs = 0
  return cfg
