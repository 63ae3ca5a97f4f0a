"""Writes the bad-input corpus that tests/bad_inputs_test.py reads.

Every file is made here, byte for byte reproducibly (fixed dates, no host names):
the plain-text ones from the literals below, the ones that must be binary
(truncated archives, UTF-16, Latin-1, lone-CR line ends) by code; `build_special`
adds the paths that are not regular files (a named pipe, link loops). Nothing is
committed but this script; the test module builds the corpus into a temporary
folder when it is imported. To look at the files:

  python tests/bad_inputs/make_corpus.py /tmp/bad_inputs

All contents are synthetic and a few lines long.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import pathlib
import sys
import tarfile
import zipfile

import numpy as np
import scipy.io

# Three synthetic MovieLens-1M style lines (UserID::MovieID::Rating::Timestamp).
_DAT = "".join(f"{u}::{i}::{r}::{978300000 + k}\n"
               for k, (u, i, r) in enumerate([(1, 10, 4), (2, 11, 3), (3, 12, 5)] * 20))
_CSV = "user_id,item_id,rating\n" + "".join(f"{u},{10 + u % 7},{1 + u % 5}\n"
                                           for u in range(1, 120))
_DATE = (1980, 1, 1, 0, 0, 0)


def _jester(rows) -> str:
  """Jester dataset-1 lines: a rating count, then 100 jokes at 99 (unrated) except
  the given {joke index: text} cells."""
  lines = []
  for count, cells in rows:
    values = [cells.get(k, "99") for k in range(100)]
    lines.append(f"{count}," + ",".join(values))
  return "\n".join(lines) + "\n"


# The plain-text bad inputs, relative path -> contents (UTF-8).
_TEXT = {
    'arabic_digit_rating.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,٣\n',
    'blank_lines.csv':
        '\n   \n\n',
    'cross_test.csv':
        'user_id,item_id,rating\n4,10,2\n2,11,5\n',
    'cross_train.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,3\n3,12,5\n',
    'duplicate_pair.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,3\n1,10,2\n3,12,5\n',
    'empty.csv':
        '',
    'empty_rating_field.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,\n',
    'float_id_beyond_2_53.csv':
        'user_id,item_id,rating\n18014398509481984,10,4\n18014398509481985.0,11,3\n',
    'float_id_lost_fraction.csv':
        'user_id,item_id,rating\n1,10,4\n1.0000000000000001,11,3\n',
    'float32_overflow_rating.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,1e300\n',
    'fractional_id.csv':
        'user_id,item_id,rating\n1.5,10,4\n2,11,3\n',
    'header_only.csv':
        'user_id,item_id,rating\n',
    'inf_rating.csv':
        'user_id,item_id,rating\n1,10,inf\n2,11,3\n',
    'jester_count_mismatch.csv':
        _jester([(2, {0: '1.5', 1: '-3.25'}), (3, {4: '9.0', 5: '0'}), (1, {6: '-10'})]),
    'jester_no_ratings.csv':
        _jester([(0, {}), (0, {})]),
    'jester_user_without_ratings.csv':
        _jester([(2, {0: '1.5', 1: '-3.25'}), (0, {}), (1, {6: '-10'})]),
    'missing_column.csv':
        'user_id,item_id,rating\n1,10,4\n2,11\n3,12,5\n',
    'mixed_delimiters.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,3\n3;12;5\n4,13,2\n',
    'ml-100k_date_timestamp/u.data':
        '1\t10\t4\t881250949\n2\t11\t3\t1998-03-04\n',
    'ml-100k_rating_zero/u.data':
        '1\t10\t4\t881250949\n2\t11\t3\t891717742\n3\t12\t0\t878887116\n',
    'ml-100k_three_fields/u.data':
        '1\t10\t4\n2\t11\t3\n',
    'ml-1m_float_item_id/ratings.dat':
        '1::10::4::978300760\n2::1e30::3::978302109\n',
    'ml-1m_commas/ratings.dat':
        '1,10,4,978300760\n2,11,3,978302109\n',
    'ml-1m_three_fields/ratings.dat':
        '1::10::4::978300760\n2::11::3::978302109\n3::12::5\n',
    'ml-20m_wrong_header/ml-20m/ratings.csv':
        'user,movie,stars,time\n1,10,4.0,978300760\n',
    'nan_rating.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,3\n3,12,NaN\n',
    'netflix_bad_qualifying/qualifying.txt':
        '1:\n1046323,2005-12-19\n1080030,2005-13-01\n',
    'netflix_bad_title_year/movie_titles.txt':
        '1,2003,Dinosaur Planet\n2,20O4,Isle of Man TT 2004 Review\n',
    'netflix_impossible_date/combined_data_1.txt':
        '1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n885013,4,2005-02-30\n',
    'netflix_mv_wrong_movie/mv_0000001.txt':
        '2:\n1488844,3,2005-09-06\n',
    'netflix_no_movie_line/combined_data_1.txt':
        '1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n30878,4,2005-12-26\n',
    'netflix_repeated_customer/combined_data_1.txt':
        '1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n1488844,4,2005-10-19\n',
    'netflix_slashed_date/combined_data_1.txt':
        '1:\n1488844,3,2005-09-06\n822109,5,2005/05/13\n',
    'non_numeric_rating.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,good\n3,12,5\n',
    'one_rating_value.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,4\n',
    'overflowing_rating.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,1e999\n',
    'rating_above_scale.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,3\n3,12,7\n',
    'scale_test.csv':
        'user_id,item_id,rating\n4,10,2\n1,11,5\n',
    'scale_train.csv':
        'user_id,item_id,rating\n1,10,1\n2,11,4\n3,12,3\n',
    'short_first_line.csv':
        '1,10,4\n2,11,3,978300761\n3,12,5,978300762\n',
    'stray_quote.csv':
        'user_id,item_id,rating\n1,10,4\n"2,11",3\n',
    'unknown_header.csv':
        'a,b,c,d,e\n1,10,4,0,0\n2,11,3,0,0\n',
    'valid.csv':
        'user_id,item_id,rating\n1,10,4\n2,11,3\n3,12,5\n4,10,2\n',
    'wrong_delimiter.tsv':
        '1\t10\t4\n2\t11\t3\n3\t12\t5\n',
}



def _zip(members: dict[str, bytes]) -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    for name, data in members.items():
      info = zipfile.ZipInfo(name, date_time=_DATE)
      info.compress_type = zipfile.ZIP_DEFLATED
      info.external_attr = 0o644 << 16
      zf.writestr(info, data)
  return buf.getvalue()


def _netflix_tar() -> bytes:
  """training_set.tar with mv_0000001.txt .. mv_0000003.txt (plain ustar, 10 KiB)."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    for movie in (1, 2, 3):
      data = (f"{movie}:\n" + "".join(f"{c},{1 + c % 5},2005-0{1 + c % 9}-1{c % 10}\n"
                                      for c in range(100 * movie, 100 * movie + 12))).encode()
      info = tarfile.TarInfo(f"training_set/mv_{movie:07d}.txt")
      info.size, info.mtime, info.mode = len(data), 0, 0o644
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def _mat() -> bytes:
  """A Jester-shaped MATLAB v5 file (3 users) with a fixed header text."""
  x = np.full((3, 101), 99.0)
  x[:, 0] = 1
  x[:, 5] = [1.5, -2.25, 9.0]
  buf = io.BytesIO()
  scipy.io.savemat(buf, {"X": x})
  data = buf.getvalue()
  header = b"MATLAB 5.0 MAT-file, written by tests/bad_inputs/make_corpus.py"
  return header.ljust(116, b" ") + data[116:]  # the original text holds the time


def _npz() -> bytes:
  """ratings.npz of a converted Netflix split (np.savez layout, fixed dates)."""
  arrays = {"user": np.array([0, 1], np.int32), "item": np.array([0, 0], np.int32),
            "rating": np.array([3, 4], np.float32),
            "timestamp": np.array([0, 86400], np.int64),
            "part": np.array([0, 2], np.int8), "user_ids": np.array([7, 9], np.int64),
            "item_ids": np.array([1], np.int64)}
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
    for name, array in arrays.items():
      member = io.BytesIO()
      np.lib.format.write_array(member, array, allow_pickle=False)
      info = zipfile.ZipInfo(f"{name}.npy", date_time=_DATE)
      info.external_attr = 0o644 << 16
      zf.writestr(info, member.getvalue())
  return buf.getvalue()


def files() -> dict[str, bytes]:
  """Relative path -> contents of every corpus file."""
  tar = _netflix_tar()
  first_member_end = 512 + 512  # header block + one data block (the file is < 512 B)
  ratings_zip = _zip({"ml-1m/movies.dat": b"10::A film (1999)::Drama\n",
                      "ml-1m/ratings.dat": _DAT.encode()})
  crc_zip = bytearray(_zip({"ratings.csv": _CSV.encode()}))
  crc_zip[60] ^= 0xFF  # inside the deflated data: inflating fails or the CRC differs
  npz = _npz()
  return {
      **{rel: text.encode("utf-8") for rel, text in _TEXT.items()},
      "truncated.csv.gz": gzip.compress(_CSV.encode(), mtime=0)[:-12],
      "truncated_zip/ml-1m.zip": ratings_zip[:len(ratings_zip) // 2],
      "corrupt_member.zip": bytes(crc_zip),
      "netflix_tar_cut_in_member/training_set.tar": tar[:first_member_end - 100],
      "netflix_tar_cut_after_member/training_set.tar": tar[:first_member_end],
      "netflix_tar_cut_in_header/training_set.tar": tar[:100],
      "netflix_tar_gz_cut/training_set.tar.gz": gzip.compress(tar, mtime=0)[:12],
      "utf16_bom.csv": "user_id,item_id,rating\n1,10,4\n2,11,3\n".encode("utf-16"),
      "utf16le_no_bom.csv": "1,10,4\n2,11,3\n".encode("utf-16-le"),
      "latin1_string_ids.csv": "user,item,rating\nana,film,4\nzo\u00eb,film,3\n"
                               .encode("latin-1"),
      "netflix_titles_utf16/movie_titles.txt": "1,2003,Dinosaur Planet\n"
                                               .encode("utf-16"),
      "netflix_mv_utf16/mv_0000001.txt": "1:\n1488844,3,2005-09-06\n".encode("utf-16"),
      "cr_line_endings.csv": b"1,10,4\r2,11,3\r3,12,5\r",
      "jester_truncated/jester3.mat": _mat()[:300],
      "netflix_npz_truncated/full/ratings.npz": npz[:len(npz) // 3],
      "two_ratings_files.zip": _zip({"a/ratings.csv": _CSV.encode()[:200],
                                     "b/ratings.csv": _CSV.encode()[200:400]}),
      "empty.zip": _zip({}),
      "ratings.csv.bz2": bz2.compress(_CSV.encode()[:300]),
  }


# Paths that are not regular files, relative to the corpus, made by `build_special`.
SPECIAL = {"special/ratings_fifo.csv": "a named pipe",
           "special/loop.csv": "a symbolic link to itself",
           "special/dangling.csv": "a symbolic link to a missing file",
           "special/folder.csv": "a folder"}


def build_special(root: pathlib.Path) -> None:
  """Makes the `SPECIAL` paths under `root` (a FIFO, link loop, dangling link, folder)."""
  folder = root / "special"
  folder.mkdir(parents=True, exist_ok=True)
  os.mkfifo(folder / "ratings_fifo.csv")
  os.symlink("loop.csv", folder / "loop.csv")
  os.symlink("missing.csv", folder / "dangling.csv")
  (folder / "folder.csv").mkdir()


def build(root: pathlib.Path) -> list[pathlib.Path]:
  """Writes every generated file under `root`; returns their paths."""
  written = []
  for rel, data in files().items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)
  return written


if __name__ == "__main__":
  if len(sys.argv) != 2:
    sys.exit("usage: python tests/bad_inputs/make_corpus.py OUTPUT_DIR")
  for p in build(pathlib.Path(sys.argv[1])):
    print(p, p.stat().st_size)
  build_special(pathlib.Path(sys.argv[1]))
