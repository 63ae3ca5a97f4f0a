"""Public rating datasets: the registry, finding files, checksummed downloads, `load`.

`load(cfg.data)` turns a data config into one `Ratings` (plus which rows are a
predefined test set and the rating scale). Where the files are looked for:

1. `data.path` when set: a ratings file, an archive, or a folder (searched for the
   dataset's known layouts, then sniffed for official files);
2. else `$AUTOREC_DATA_DIR`, then `~/.cache/autorec_jax`, each searched for the
   dataset's known layouts: the official archive or its unpacked folder
   (`ml-1m.zip`, `ml-1m/ratings.dat`) and the project's shared layout
   (`movielens-1m/ratings_no_timestamps.csv.gz`, `jester/dataset1-part3/jester3.mat`).

The generic readers need `data.path`: `csv` (delimited text, `readers.read_ratings`)
and `monti` (a rating matrix with split masks, `masks.read_split_matrix`, whose test
mask is the predefined test part).

When nothing is found and `data.download` is set, the official archives are downloaded
into the search folder (`data.path` if it is a folder, else the cache), checked against
their size and sha256, and renamed into place atomically; archives are read in memory,
never unpacked. Without network, or with downloads off, DataNotFoundError says which
file to put where.

Checksums (taken from public sources, not computed here, as no archive can be fetched
from this project's machines): MovieLens sha256 and sizes from tensorflow_datasets'
`url_checksums/movielens.txt`; ML-10M (not in TFDS) from several independent projects
that pinned the official archive (omnirec's MovieLens loader and others, which record
it beside GroupLens' published MD5 ce571fd55effeba0271552578f2648bd); Jester dataset 1
from omnirec's Jester loader, identical to the sha256 and sizes another project recorded.
Every registered archive has a sha256; `Archive.sha256=None` (size-only checking) is
supported but unused. Jester's files moved to eigentaste's `dataset/archive/` folder; the
older URL is tried second. Reading Jester's .xls needs the optional `xlrd` package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
from absl import logging

from autorec_jax.data import errors, jester, masks, readers, text
from autorec_jax.data.errors import DataError, DataFormatError, DataNotFoundError
from autorec_jax.data.types import Ratings

ENV_VAR = "AUTOREC_DATA_DIR"
_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_EIGENTASTE = "https://eigentaste.berkeley.edu/dataset/"
# Tests replace this to serve downloads without network.
_urlopen = urllib.request.urlopen


class DataConfigError(DataError, ValueError):
  """The data config itself is wrong (unknown dataset, bad option value)."""


@dataclasses.dataclass(frozen=True)
class Archive:
  """One downloadable archive: URLs (official first), its name on disk, checksums."""

  urls: tuple[str, ...]
  filename: str
  sha256: str | None  # None: verified by size only
  size: int | None
  member: str  # the ratings file inside


@dataclasses.dataclass(frozen=True)
class Source:
  """A ratings file relative to a data folder (`member`: inside that zip)."""

  relpath: str
  member: str | None = None
  reader: str = "auto"  # a key of readers.READERS, or "jester"


@dataclasses.dataclass(frozen=True)
class Layout:
  """Files that together hold a dataset; `note` is logged when it is used."""

  sources: tuple[Source, ...]
  note: str | None = None


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """A registered dataset.

  Attributes:
    name: the config name (`data.name`).
    archives: official downloads (all are needed; Jester dataset 1 has three parts).
    rating_scale: (min, max), or None to use the observed range.
    layouts: where its ratings may lie under a data folder, most preferred first.
    titles: names of an item-title file that may lie next to the ratings.
    rating_step: every rating is a multiple of it (MovieLens: whole stars, or half
      stars from ML-10M on), or None.
  """

  name: str
  archives: tuple[Archive, ...]
  rating_scale: tuple[float, float] | None
  layouts: tuple[Layout, ...]
  titles: tuple[str, ...] = ()
  rating_step: float | None = None


def _movielens(name, zip_name, sha256, size, member, reader, scale, unpacked,
               extra=(), titles=()) -> DatasetSpec:
  archive = Archive((_GROUPLENS + zip_name,), zip_name, sha256, size, member)
  layouts = tuple(Layout((Source(p, reader=reader),)) for p in unpacked)
  layouts += (Layout((Source(zip_name, member, reader),)),)
  layouts += tuple(Layout((Source(p),)) for p in extra)
  # MovieLens rates in steps of its lowest rating: whole stars, or half stars.
  return DatasetSpec(name, (archive,), scale, layouts, titles, rating_step=scale[0])


def _jester() -> DatasetSpec:
  archives = tuple(
      Archive((f"{_EIGENTASTE}archive/jester_dataset_1_{k}.zip",
               f"{_EIGENTASTE}jester_dataset_1_{k}.zip"),
              f"jester_dataset_1_{k}.zip", sha, size, f"jester-data-{k}.xls")
      for k, sha, size in (
          (1, "cb7841756ded125b15f3d95c9f8241224065e96354c132a46ae4214deeab7615", 4171628),
          (2, "4d312fd824d8c8cb2c9c952a7b1fb7c00d1f5fd3ece370f7285aa701d371748b", 3924205),
          (3, "7f548d3762d3506cf7cd37d8cb9e3adb67984a7da7aa2d2096d5e0b1b884758d", 2151299)))
  part3 = ("Jester dataset 1 part 3 only (24,938 of 73,421 users): "
           "jester-data-1.xls and -2.xls were not found")
  layouts = (
      Layout(tuple(Source(f"jester-data-{k}.xls", reader="jester") for k in (1, 2, 3))),
      Layout(tuple(Source(f"jester/jester-data-{k}.xls", reader="jester")
                   for k in (1, 2, 3))),
      Layout(tuple(Source(a.filename, a.member, "jester") for a in archives)),
      Layout((Source("jester/dataset1-part3/jester3.mat", reader="jester"),), part3),
      Layout((Source("jester/dataset1-part3/ratings.csv.gz"),), part3),
  )
  return DatasetSpec("jester", archives, (-10.0, 10.0), layouts)


REGISTRY: dict[str, DatasetSpec] = {
    s.name: s for s in (
        _movielens("movielens_100k", "ml-100k.zip",
                   "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                   4924029, "ml-100k/u.data", "movielens_100k", (1.0, 5.0),
                   ("ml-100k/u.data", "movielens-100k/u.data"), titles=("u.item",)),
        _movielens("movielens_1m", "ml-1m.zip",
                   "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                   5917549, "ml-1m/ratings.dat", "movielens_dat", (1.0, 5.0),
                   ("ml-1m/ratings.dat", "movielens-1m/ratings.dat"),
                   ("movielens-1m/ratings_no_timestamps.csv.gz",), ("movies.dat",)),
        _movielens("movielens_10m", "ml-10m.zip",
                   "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
                   65566137, "ml-10M100K/ratings.dat", "movielens_dat", (0.5, 5.0),
                   ("ml-10M100K/ratings.dat", "ml-10m/ratings.dat",
                    "movielens-10m/ratings.dat"), titles=("movies.dat",)),
        _movielens("movielens_20m", "ml-20m.zip",
                   "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
                   198702078, "ml-20m/ratings.csv", "movielens_csv", (0.5, 5.0),
                   ("ml-20m/ratings.csv", "movielens-20m/ratings.csv"),
                   titles=("movies.csv",)),
        _movielens("movielens_25m", "ml-25m.zip",
                   "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
                   261978986, "ml-25m/ratings.csv", "movielens_csv", (0.5, 5.0),
                   ("ml-25m/ratings.csv", "movielens-25m/ratings.csv"),
                   titles=("movies.csv",)),
        _movielens("movielens_latest_small", "ml-latest-small.zip",
                   "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
                   978202, "ml-latest-small/ratings.csv", "movielens_csv", (0.5, 5.0),
                   ("ml-latest-small/ratings.csv",), titles=("movies.csv",)),
        _jester(),
        DatasetSpec("csv", (), None, ()),  # generic: data.path is required
        # A rating matrix with split masks (Monti et al.'s .mat layout, or .npz):
        # generic, data.path is required (autorec_jax/data/masks.py).
        DatasetSpec("monti", (), None, ()),
        # Netflix Prize time splits converted by `python -m autorec_jax.data.netflix`;
        # the original data is no longer distributed, so there is nothing to download.
        DatasetSpec("netflix", (), (1.0, 5.0), ()),
    )
}


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedData:
  """What `load` returns.

  Attributes:
    ratings: train and predefined-test ratings in one index space.
    is_predefined_test: bool[N], True for rows read from `data.test_path` (or a
      converted Netflix split's test half); None when there is no predefined test.
    is_predefined_valid: bool[N], True for a converted Netflix split's valid half;
      None elsewhere (validation is then carved from train).
    rating_scale: (min, max) every rating lies in.
    titles_path: the item-title file next to the ratings (MovieLens movies.dat,
      movies.csv or u.item), when there is one on disk.
    files: the files the ratings were read from (a zip archive, not its member), so
      a trained run can tell when its data changed.
  """

  ratings: Ratings
  is_predefined_test: np.ndarray | None
  rating_scale: tuple[float, float]
  titles_path: str | None
  is_predefined_valid: np.ndarray | None = None
  files: tuple[str, ...] = ()


def get_spec(name: str) -> DatasetSpec:
  if name not in REGISTRY:
    raise DataConfigError(f"unknown dataset data.name={name!r}; expected one of "
                          f"{', '.join(REGISTRY)}")
  return REGISTRY[name]


def default_cache_dir() -> str:
  return os.path.join(os.path.expanduser("~"), ".cache", "autorec_jax")


def search_dirs() -> list[str]:
  """$AUTOREC_DATA_DIR (when set), then the cache folder."""
  env = os.environ.get(ENV_VAR)
  dirs = [env] if env else []
  cache = default_cache_dir()
  return dirs + ([cache] if cache not in dirs else [])


def locate(spec: DatasetSpec, dirs) -> tuple[Layout, list[str]] | None:
  """The first layout whose files all exist, searching `dirs` in order."""
  for d in dirs:
    for layout in spec.layouts:
      paths = [os.path.join(d, s.relpath) for s in layout.sources]
      if all(errors.is_file_like(p) for p in paths):
        return layout, paths
  return None


def read_layout(layout: Layout, paths: list[str], duplicates: str) -> text.RawRatings:
  """Reads a located layout (several Jester parts are concatenated)."""
  if layout.note:
    logging.warning("%s: %s", paths[0], layout.note)
  sources = layout.sources
  if all(s.reader == "jester" for s in sources):
    return jester.read_jester_parts([(p, s.member) for p, s in zip(paths, sources)])
  (source,), (path,) = sources, paths
  return readers.READERS[source.reader](path, source.member, duplicates=duplicates)


class _DownloadFailed(Exception):
  pass


def _fetch(archive: Archive, target: str) -> None:
  """Downloads one archive to `target`, verified, via a temporary file and a rename."""
  os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
  failures, mismatch = [], None
  for url in archive.urls:
    tmp = f"{target}.part{os.getpid()}"
    digest, size = hashlib.sha256(), 0
    try:
      with _urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
        while chunk := response.read(1 << 20):
          f.write(chunk)
          digest.update(chunk)
          size += len(chunk)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
      failures.append(f"{url}: {getattr(e, 'reason', e)}")
      _remove(tmp)
      continue
    got = digest.hexdigest()
    if ((archive.size is not None and size != archive.size) or
        (archive.sha256 is not None and got != archive.sha256)):
      _remove(tmp)
      want = [f"sha256 {archive.sha256}"] if archive.sha256 is not None else []
      want += [f"{archive.size} bytes"] if archive.size is not None else []
      mismatch = DataFormatError(url, None, f"expected {', '.join(want)}, got sha256 "
                                 f"{got}, {size} bytes; the download was discarded")
      continue
    os.replace(tmp, target)
    logging.info("downloaded %s to %s (%d bytes)", url, target, size)
    return
  if mismatch is not None:
    raise mismatch
  raise _DownloadFailed("; ".join(failures))


def _remove(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


def download(spec: DatasetSpec, dest_dir: str, searched=None) -> None:
  """Downloads the spec's archives that `dest_dir` lacks.

  Raises:
    DataNotFoundError: no network or no server answered (the message names the
      folders `searched` and where to put the files by hand).
    DataFormatError: a download had the wrong size or sha256 (it is discarded).
  """
  for archive in spec.archives:
    target = os.path.join(dest_dir, archive.filename)
    if not os.path.isfile(target):
      try:
        _fetch(archive, target)
      except _DownloadFailed as e:
        raise DataNotFoundError(_missing_message(spec, searched or [dest_dir], dest_dir,
                                                 failure=str(e))) from None


def _missing_message(spec: DatasetSpec, dirs, dest_dir: str, *,
                     failure: str | None = None) -> str:
  looked = ", ".join(dict.fromkeys(s.relpath for l in spec.layouts for s in l.sources))
  files = " and ".join(a.urls[0] for a in spec.archives)
  names = ", ".join(a.filename for a in spec.archives)
  env, cause = os.environ.get(ENV_VAR), ""
  if env and not os.path.isdir(env):  # the likely cause: said first
    problem = "expected a folder, got a file" if os.path.exists(env) else "no such folder"
    cause = f" ({ENV_VAR}={env}: {problem})"
  msg = (f"dataset {spec.name} not found{cause}: looked for {looked} under "
         f"{', '.join(dirs)}. Download {files} and save {names} in {dest_dir} "
         f"(as is, or unzipped), or set {ENV_VAR} to a folder that holds "
         f"{'them' if len(spec.archives) > 1 else 'it'}")
  if failure is None:
    return msg + ", or set data.download=True to fetch it"
  return msg + f" (download failed: {failure})"


def _file_names(spec: DatasetSpec) -> set[str]:
  """Base names of the files (and archive members) the spec's layouts consist of."""
  names = {os.path.basename(s.relpath) for l in spec.layouts for s in l.sources}
  return names | {os.path.basename(a.member) for a in spec.archives}


def _find_and_read(spec: DatasetSpec, path: str | None, allow_download: bool,
                   duplicates: str) -> tuple[text.RawRatings, str]:
  """The dataset's ratings and the file they came from (downloading when allowed)."""
  if path is not None and not os.path.isdir(path):
    try:
      errors.check_file(path, "file or folder")
    except DataNotFoundError as e:
      raise DataNotFoundError(f"{e} (data.path for {spec.name})") from None
    return readers.read_ratings(path, duplicates=duplicates), path
  dirs = [path] if path is not None else search_dirs()
  found = locate(spec, dirs)
  if found is None and path is not None:
    # A folder holding the dataset's own files (data.path=.../ml-1m): read it, but
    # not a folder of some other dataset's files.
    try:
      first = readers.find_in_dir(path)[0]
    except DataNotFoundError:
      first = None
    if first is not None and os.path.basename(first) in _file_names(spec):
      return readers.read_ratings(path, duplicates=duplicates), first
  if found is None:
    dest = path if path is not None else default_cache_dir()
    if not allow_download or not spec.archives:
      raise DataNotFoundError(_missing_message(spec, dirs, dest))
    download(spec, dest, searched=dirs)
    found = locate(spec, [dest])
    if found is None:  # the archives are there, so their layout must be found
      raise DataNotFoundError(_missing_message(spec, [dest], dest))
  layout, paths = found
  return read_layout(layout, paths, duplicates), paths[0]


_WIDEN = "--config.data.rating_min and --config.data.rating_max"


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32(raw: text.RawRatings) -> None:
  """Ratings are stored as float32: one beyond its range would become infinite."""
  bad = np.abs(raw.rating) > _FLOAT32_MAX
  if bad.any():
    k = int(np.argmax(bad))
    path, line = raw.where(k)
    raise DataFormatError(path, line, f"expected a rating within +-{_FLOAT32_MAX:.4g} "
                          f"(ratings are stored as float32), got {raw.rating[k]:g}")


def _check_scale(raw: text.RawRatings, scale: tuple[float, float], origin: str) -> None:
  """DataFormatError at the first rating outside `scale` (`origin`: where it came from)."""
  lo, hi = scale
  bad = (raw.rating < lo) | (raw.rating > hi)
  if bad.any():
    k = int(np.argmax(bad))
    path, line = raw.where(k)
    raise DataFormatError(path, line, f"expected a rating in [{lo:g}, {hi:g}], got "
                          f"{raw.rating[k]:g}; the scale is {origin} (widen it "
                          f"deliberately with {_WIDEN})")


def _check_values(spec: DatasetSpec, raw: text.RawRatings, scale: tuple[float, float],
                  origin: str, duplicates: str) -> None:
  """Every rating on the scale and, unless repeated pairs were averaged (a mean may
  fall between steps), on the data set's steps."""
  _check_scale(raw, scale, origin)
  if duplicates != "mean":
    _check_step(spec, raw)


def _check_step(spec: DatasetSpec, raw: text.RawRatings) -> None:
  """DataFormatError at the first rating that is no multiple of the data set's
  `rating_step` (a half star in MovieLens-1M: the file is another data set's)."""
  if spec.rating_step is None:
    return
  steps = raw.rating.astype(np.float64) / spec.rating_step
  bad = steps != np.round(steps)
  if bad.any():
    k = int(np.argmax(bad))
    path, line = raw.where(k)
    raise DataFormatError(path, line, f"expected a rating in steps of "
                          f"{spec.rating_step:g} as {spec.name} has, got {raw.rating[k]:g}; "
                          "another data set's file? read it with data.name=csv")


def rating_scale(spec: DatasetSpec, train: text.RawRatings, rating_min, rating_max
                 ) -> tuple[tuple[float, float], str]:
  """The rating scale and where it comes from, for messages.

  Each bound is the config's (`data.rating_min`/`rating_max`) when set, else the data
  set's fixed scale, else the lowest/highest rating of the training file(s): never of
  a predefined test file, whose ratings must fit the scale the model is trained on.
  """
  observed = spec.rating_scale is None
  if observed:
    origin = f"the range of the training ratings in {', '.join(train.paths)}"
  else:
    origin = f"the {spec.name} rating scale"
  if rating_min is not None and rating_max is not None:
    origin = "set by data.rating_min and data.rating_max"
  elif rating_min is not None or rating_max is not None:
    which = "data.rating_min" if rating_min is not None else "data.rating_max"
    origin = f"{origin} with {which} from the config"
  if observed:
    lo, hi = float(train.rating.min()), float(train.rating.max())
  else:
    lo, hi = spec.rating_scale
  scale = (float(rating_min) if rating_min is not None else lo,
           float(rating_max) if rating_max is not None else hi)
  if not scale[0] < scale[1]:
    if observed and rating_min is None and rating_max is None:
      n = len(train)
      raise DataFormatError(", ".join(train.paths), None, f"expected ratings of at least "
                            f"two values to take the rating scale from, got only "
                            f"{lo:g} ({n} rating{'s' if n != 1 else ''}); set the scale "
                            f"with {_WIDEN}")
    raise DataConfigError(f"the rating scale [{scale[0]:g}, {scale[1]:g}] is empty; check "
                          f"{_WIDEN}")
  return scale, origin


def _cross_duplicates(train: text.RawRatings, test: text.RawRatings) -> None:
  """A (user, item) pair in both the training and the predefined test file is an error."""
  both = text.concat([train, test])
  dup = pd.DataFrame({"u": both.user, "i": both.item}).duplicated().to_numpy()
  if dup.any():
    k = int(np.argmax(dup))
    same = (train.user == both.user[k]) & (train.item == both.item[k])
    first = int(np.flatnonzero(same)[0])
    path, line = both.where(k)
    train_path, train_line = train.where(first)
    raise DataFormatError(path, line, f"expected test pairs absent from the training "
                          f"file, got user {both.user[k]} item {both.item[k]} also at "
                          f"{train_path}:{train_line}")


def _titles(spec: DatasetSpec, ratings_file: str) -> str | None:
  folder = os.path.dirname(ratings_file)
  for name in spec.titles:
    candidate = os.path.join(folder, name)
    if os.path.isfile(candidate):
      return candidate
  return None


def _csv_options(opt) -> dict:
  """The generic text settings (`readers.read_ratings` keywords) from the csv_* fields."""
  header = opt("csv_header", "auto")
  if header not in text.HEADER_CHOICES:
    raise DataConfigError(f"data.csv_header={header!r} must be one of "
                          f"{', '.join(text.HEADER_CHOICES)}")
  columns = tuple(opt("csv_columns") or ()) or None  # empty: from the header, else 0,1,2
  if columns is not None and (len(columns) not in (3, 4) or
                              len(set(columns)) != len(columns) or min(columns) < 0):
    raise DataConfigError(f"data.csv_columns={tuple(columns)} must be 3 or 4 distinct "
                          "field indices: user, item, rating[, timestamp]")
  try:
    delimiter = text.normalize_delimiter(opt("csv_delimiter"))
  except ValueError as e:
    raise DataConfigError(f"data.csv_delimiter: {e}") from None
  return dict(delimiter=delimiter, header=header, columns=columns,
              string_ids=bool(opt("csv_string_ids", False)))


def load(data_cfg) -> LoadedData:
  """Loads the dataset a data config names (see the module docstring for where from).

  Args:
    data_cfg: a ConfigDict (or any object) with name, path, test_path, download,
      duplicates, csv_delimiter, csv_header ("auto"/"yes"/"no"), csv_columns
      (user, item, rating[, timestamp]), rating_min, rating_max; missing attributes
      take their defaults. The csv_* fields apply to name="csv" (and its test file);
      an optional csv_string_ids=True keeps non-numeric ids as strings. A pair in
      both the training and the test file is an error whatever `duplicates` says.

  Raises:
    DataNotFoundError: the data is missing and cannot be downloaded.
    DataFormatError: a file is malformed, or a rating is outside the rating scale.
    DataConfigError: an option value is invalid.
  """
  def opt(key, default=None):
    return getattr(data_cfg, key, default)

  spec = get_spec(opt("name"))
  if spec.name == "netflix":
    return _load_netflix(opt)
  duplicates = opt("duplicates", "error")
  if duplicates not in text.DUPLICATE_POLICIES:
    raise DataConfigError(f"data.duplicates={duplicates!r} must be one of "
                          f"{', '.join(text.DUPLICATE_POLICIES)}")
  for key in ("path", "test_path"):
    if opt(key) is not None and not str(opt(key)).strip():
      raise DataConfigError(f"--config.data.{key}={opt(key)!r} is empty; give a file or "
                            "folder, or leave it unset")
  path, test_path = (None if opt(k) is None else os.path.expanduser(opt(k))
                     for k in ("path", "test_path"))
  if spec.name == "monti":
    return _load_split_matrix(spec, path, opt)
  csv_options = {}
  if spec.name == "csv":
    if path is None:
      raise DataConfigError("data.name='csv' needs data.path (a ratings file or folder)")
    csv_options = _csv_options(opt)
    train = readers.read_ratings(path, duplicates=duplicates, **csv_options)
    ratings_file = train.paths[0]
  else:
    train, ratings_file = _find_and_read(spec, path, bool(opt("download", False)),
                                         duplicates)
  _check_float32(train)
  scale, origin = rating_scale(spec, train, opt("rating_min"), opt("rating_max"))
  _check_values(spec, train, scale, origin, duplicates)
  merged, is_test = train, None
  if test_path is not None:
    test = readers.read_ratings(test_path, duplicates=duplicates, **csv_options)
    _cross_duplicates(train, test)
    _check_float32(test)
    _check_values(spec, test, scale, origin, duplicates)
    merged = text.concat([train, test])
    is_test = np.concatenate([np.zeros(len(train), bool), np.ones(len(test), bool)])
  return LoadedData(ratings=merged.to_ratings(), is_predefined_test=is_test,
                    rating_scale=scale, titles_path=_titles(spec, ratings_file),
                    files=_files_read(merged.paths))


def _files_read(paths) -> tuple[str, ...]:
  """The files behind a reader's paths ("a.zip:member" is the archive a.zip), in order."""
  out = []
  for p in paths:
    if not os.path.isfile(p) and ":" in p and os.path.isfile(p.rsplit(":", 1)[0]):
      p = p.rsplit(":", 1)[0]
    p = os.path.abspath(p)
    if p not in out:
      out.append(p)
  return tuple(out)


def _load_split_matrix(spec: DatasetSpec, path: str | None, opt) -> LoadedData:
  """A rating matrix with split masks (`masks.read_split_matrix`): its test mask is
  the predefined test part, its validation mask (when it has one) the validation part.
  The scale is the range of the ratings outside the test mask unless the config sets
  it."""
  if path is None:
    raise DataConfigError("data.name='monti' needs data.path (a .mat or .npz file with "
                          "a rating matrix and split masks, or a folder holding one)")
  path = masks.find_file(path)
  matrix = masks.read_split_matrix(path)
  scale, origin = rating_scale(spec, matrix.raw.subset(matrix.part != masks.TEST),
                               opt("rating_min"), opt("rating_max"))
  masks.check_scale(matrix, scale, origin)
  return LoadedData(
      ratings=matrix.raw.to_ratings(), is_predefined_test=matrix.part == masks.TEST,
      rating_scale=scale, titles_path=None,
      is_predefined_valid=(matrix.part == masks.VALID) if matrix.has_valid else None,
      files=(os.path.abspath(path),))


def display_name(name: str, path: str | None) -> str:
  """How reports call a data set: its registered name, or for the generic readers
  (csv, monti) the base name of the file read."""
  if name in ("csv", "monti") and path:
    return os.path.basename(os.path.normpath(os.path.expanduser(path)))
  return name


NETFLIX_SPLITS = ("full", "3m", "6m", "1y")


def _load_netflix(opt) -> LoadedData:
  """A converted Netflix time split: `data.path` (or $AUTOREC_DATA_DIR/netflix-converted)
  holds one folder per split, `data.time_split` picks one."""
  from autorec_jax.data import netflix  # pylint: disable=import-outside-toplevel

  split = opt("time_split", "full")
  if split not in NETFLIX_SPLITS:
    raise DataConfigError(f"data.time_split={split!r} must be one of "
                          f"{', '.join(NETFLIX_SPLITS)}")
  root = opt("path")
  if root is None:
    root = os.path.join(os.environ.get("AUTOREC_DATA_DIR", default_cache_dir()),
                        "netflix-converted")
  root = os.path.expanduser(root)
  split_dir = root if os.path.basename(os.path.normpath(root)) == split else os.path.join(
      root, split)
  if not os.path.lexists(os.path.join(split_dir, "ratings.npz")):
    raise DataNotFoundError(
        f"no converted Netflix split in {split_dir} (expected {split_dir}/ratings.npz). "
        "The Netflix Prize data is not downloadable any more: convert your copy with "
        "`python -m autorec_jax.data.netflix --input=training_set --output=DIR` and set "
        "data.path=DIR")
  ratings, part = netflix.load_converted(split_dir)
  titles = os.path.join(os.path.dirname(os.path.normpath(split_dir)), "movie_titles.txt")
  return LoadedData(ratings=ratings, is_predefined_test=part == 2, rating_scale=(1.0, 5.0),
                    titles_path=titles if os.path.exists(titles) else None,
                    is_predefined_valid=part == 1,
                    files=(os.path.abspath(os.path.join(split_dir, "ratings.npz")),))
