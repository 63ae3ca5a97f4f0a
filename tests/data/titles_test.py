import os

import numpy as np
import pytest

from autorec_jax.data import titles
from autorec_jax.data.errors import DataAccessError, DataFormatError, DataNotFoundError
from tests import conftest


def test_movielens_dat_in_iso_8859_1(tmp_path):
  path = tmp_path / "movies.dat"
  path.write_bytes("1::Toy Story (1995)::Animation|Children's|Comedy\n"
                   "73::Misérables, Les (1995)::Drama|Musical\n".encode("iso-8859-1"))
  assert titles.read_titles(path) == {1: "Toy Story (1995)", 73: "Misérables, Les (1995)"}


def test_movielens_dat_in_utf8(tmp_path):
  path = tmp_path / "movies.dat"
  path.write_text("73::Misérables, Les (1995)::Drama\n", encoding="utf-8")
  assert titles.read_titles(path) == {73: "Misérables, Les (1995)"}


def test_u_item_and_movies_csv(tmp_path):
  u_item = tmp_path / "u.item"
  u_item.write_bytes("1|Toy Story (1995)|01-Jan-1995||http://x|0|0\n"
                     "2|GoldenEye (1995)|01-Jan-1995||http://y|0|1\n".encode("iso-8859-1"))
  assert titles.read_titles(u_item) == {1: "Toy Story (1995)", 2: "GoldenEye (1995)"}
  csv = tmp_path / "movies.csv"
  csv.write_text('movieId,title,genres\n1,Toy Story (1995),Comedy\n'
                 '11,"American President, The (1995)",Comedy|Drama\n', encoding="utf-8")
  assert titles.read_titles(csv) == {1: "Toy Story (1995)",
                                     11: "American President, The (1995)"}


def test_netflix_titles_split_on_two_commas(tmp_path):
  path = tmp_path / "movie_titles.txt"
  path.write_bytes("1,2003,Dinosaur Planet\r\n"
                   "17,2005,Seven Deadly Sins, The Complete Series\r\n"
                   "4388,NULL,Ancient Civilizations: Athens and Greece\r\n"
                   "9,1991,Amélie\r\n".encode("iso-8859-1"))
  assert titles.read_titles(path) == {
      1: "Dinosaur Planet (2003)", 17: "Seven Deadly Sins, The Complete Series (2005)",
      4388: "Ancient Civilizations: Athens and Greece", 9: "Amélie (1991)"}


def test_bad_files_name_file_and_line(tmp_path):
  path = tmp_path / "movies.dat"
  path.write_text("1::Toy Story (1995)::Comedy\nx1::Bad::Drama\n")
  with pytest.raises(DataFormatError, match=r"movies\.dat:2: expected an integer movie id"):
    titles.read_titles(path)
  path.write_text("1,2003,Dinosaur Planet\n2,20x4,Isle of Man\n")
  with pytest.raises(DataFormatError, match=r":2: expected a 4-digit YearOfRelease"):
    titles.read_titles(path)
  path.write_text("just some text\n")
  with pytest.raises(DataFormatError, match=":1: expected a title file"):
    titles.read_titles(path)
  path.write_text("\n")
  with pytest.raises(DataFormatError, match="empty file"):
    titles.read_titles(path)
  with pytest.raises(DataNotFoundError):
    titles.read_titles(tmp_path / "missing.dat")


def test_lookup_by_numpy_and_string_ids():
  names = {1: "A", 2: "B"}
  assert titles.lookup(names, np.array([2, 1, 3])) == ["B", "A", None]
  assert titles.lookup(names, ["1", "x"]) == ["A", None]
  assert titles.lookup(None, [1, 2]) == [None, None]


def test_real_movielens_1m_and_netflix_titles():
  ml = titles.read_titles(conftest.require_data("movielens-1m/movies.dat"))
  assert len(ml) == 3883 and ml[1] == "Toy Story (1995)"
  assert any("é" in t for t in ml.values())  # ISO-8859-1 decoded
  nf = titles.read_titles(conftest.require_data("netflix-prize/movie_titles.txt"))
  assert len(nf) == 17770 and nf[1] == "Dinosaur Planet (2003)"


def test_a_named_pipe_or_a_folder_is_named_as_such(tmp_path):
  fifo = tmp_path / "movies.dat"
  os.mkfifo(fifo)
  with pytest.raises(DataAccessError) as err:
    titles.read_titles(fifo)  # returns at once: the pipe is never opened for reading
  assert str(err.value) == f"{fifo}: expected a titles file, got a named pipe (FIFO)"
  (tmp_path / "u.item").mkdir()
  with pytest.raises(DataAccessError, match="expected a titles file, got a folder"):
    titles.read_titles(tmp_path / "u.item")


def test_a_movie_id_of_5000_digits_is_an_error_not_a_traceback(tmp_path):
  path = tmp_path / "movies.dat"
  path.write_text("9" * 5000 + "::X::y\n")
  with pytest.raises(DataFormatError) as err:
    titles.read_titles(path)
  assert str(err.value).startswith(f"{path}:1: expected an integer movie id (below 2**63)")
