"""Writes the binary members of the bad-input corpus (tests/bad_inputs/).

The plain-text bad inputs are committed as they are; the ones that must be binary
(truncated archives, UTF-16, Latin-1, lone-CR line ends) are made here, byte for byte
reproducibly (fixed dates, no host names), and committed too. Rerun after changing:

  python tests/bad_inputs/make_corpus.py

`tests/bad_inputs_test.py` checks that the committed files equal what this writes.
All contents are synthetic.
"""

from __future__ import annotations

import gzip
import io
import pathlib
import sys
import tarfile
import zipfile

import numpy as np
import scipy.io

HERE = pathlib.Path(__file__).resolve().parent

# Three synthetic MovieLens-1M style lines (UserID::MovieID::Rating::Timestamp).
_DAT = "".join(f"{u}::{i}::{r}::{978300000 + k}\n"
               for k, (u, i, r) in enumerate([(1, 10, 4), (2, 11, 3), (3, 12, 5)] * 20))
_CSV = "user_id,item_id,rating\n" + "".join(f"{u},{10 + u % 7},{1 + u % 5}\n"
                                           for u in range(1, 120))
_DATE = (1980, 1, 1, 0, 0, 0)


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
  """Relative path -> contents of every generated corpus file."""
  tar = _netflix_tar()
  first_member_end = 512 + 512  # header block + one data block (the file is < 512 B)
  ratings_zip = _zip({"ml-1m/movies.dat": b"10::A film (1999)::Drama\n",
                      "ml-1m/ratings.dat": _DAT.encode()})
  crc_zip = bytearray(_zip({"ratings.csv": _CSV.encode()}))
  crc_zip[60] ^= 0xFF  # inside the deflated data: inflating fails or the CRC differs
  npz = _npz()
  return {
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
  }


def build(root: pathlib.Path = HERE) -> list[pathlib.Path]:
  """Writes every generated file under `root`; returns their paths."""
  written = []
  for rel, data in files().items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)
  return written


if __name__ == "__main__":
  for p in build(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
    print(p, p.stat().st_size)
