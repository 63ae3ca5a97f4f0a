"""Tests for autorec_jax.data.text: delimited parsing, sniffing, errors, duplicates."""

import gzip
import io
import logging
import zipfile

import numpy as np
import pandas as pd
import pytest

from autorec_jax.data import text
from autorec_jax.data.errors import DataFormatError, DataNotFoundError


UNIQUE_ROWS = "".join(f"{u},{u * 7 % 13},{u % 5 + 1}\n" for u in range(2000))


def write(tmp_path, name, content, mode="plain", member=None):
  """Writes `content` (str) as a plain, .gz or .zip file; returns its path."""
  path = tmp_path / name
  data = content.encode()
  if mode == "gz":
    path.write_bytes(gzip.compress(data))
  elif mode == "zip":
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
      zf.writestr(member, data)
  else:
    path.write_bytes(data)
  return path


def assert_error(err, path, line):
  """The message starts with FILE:LINE (or FILE: when line is None)."""
  assert str(path) in str(err.value)
  assert err.value.line == line
  where = f"{path}:{line}:" if line is not None else f"{path}:"
  assert str(err.value).startswith(where), str(err.value)


@pytest.mark.parametrize("content,delimiter", [
    ("1,10,4.5\n2,20,3\n", ","),
    ("1\t10\t4.5\n2\t20\t3\n", "\t"),
    ("1 10   4.5\n 2\t20 3\n", text.WHITESPACE),
    ("1::10::4.5\n2::20::3\n", "::"),
    ("1;10;4.5\n2;20;3\n", ";"),
    ("1|10|4.5\n2|20|3\n", "|"),
])
def test_sniffs_delimiter_and_parses(tmp_path, content, delimiter):
  path = write(tmp_path, "r.txt", content)
  layout = text.sniff(path.read_bytes(), str(path))
  assert layout.delimiter == delimiter and layout.header is None and layout.num_fields == 3
  raw = text.read_delimited(path)
  np.testing.assert_array_equal(raw.user, [1, 2])
  np.testing.assert_array_equal(raw.item, [10, 20])
  np.testing.assert_array_equal(raw.rating, [4.5, 3.0])
  assert raw.timestamp is None
  np.testing.assert_array_equal(raw.line, [1, 2])
  assert raw.paths == (str(path),)


def test_header_sniffed_and_columns_taken_from_names(tmp_path):
  path = write(tmp_path, "r.csv", "timestamp,rating,movieId,userId\n99,4,10,1\n98,5,11,2\n")
  raw = text.read_delimited(path)
  np.testing.assert_array_equal(raw.user, [1, 2])
  np.testing.assert_array_equal(raw.item, [10, 11])
  np.testing.assert_array_equal(raw.rating, [4, 5])
  np.testing.assert_array_equal(raw.timestamp, [99, 98])
  np.testing.assert_array_equal(raw.line, [2, 3])


def test_columns_from_header():
  names = ["userId", "movieId", "rating", "timestamp"]
  assert text.columns_from_header(names) == (0, 1, 2, 3)
  assert text.columns_from_header(["user_id", "joke_id", "rating"]) == (0, 1, 2)
  assert text.columns_from_header(["a", "b", "c"]) is None


def test_explicit_columns_header_and_delimiter(tmp_path):
  path = write(tmp_path, "r.tsv",
               "x\ty\tz\tw\tv\nfoo\t7\t3\t2.5\t1000\nbar\t8\t4\t1\t1001\n")
  raw = text.read_delimited(path, delimiter="tab", header="yes", columns=(2, 1, 3, 4))
  np.testing.assert_array_equal(raw.user, [3, 4])
  np.testing.assert_array_equal(raw.item, [7, 8])
  np.testing.assert_array_equal(raw.rating, [2.5, 1])
  np.testing.assert_array_equal(raw.timestamp, [1000, 1001])


def test_wrong_explicit_delimiter(tmp_path):
  path = write(tmp_path, "r.csv", "1,2,3\n")
  with pytest.raises(DataFormatError, match="separated by '::'") as err:
    text.read_delimited(path, delimiter="::")
  assert_error(err, path, 1)


@pytest.mark.parametrize("delimiter", ["1", "a", ".", "-", "+", "_", '"', "\x0b"])
def test_a_delimiter_that_is_part_of_numbers_or_ids_is_refused(tmp_path, delimiter):
  path = write(tmp_path, "r.csv", "1|55|5\n")
  with pytest.raises(ValueError, match="delimiter must not be a character of numbers"):
    text.read_delimited(path, delimiter=delimiter)


def test_header_no_makes_a_text_first_line_an_error(tmp_path):
  path = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path, header="no")
  assert_error(err, path, 1)


@pytest.mark.parametrize("first", ["1,2,", "1,2,abc", "1,x,3"])
def test_bad_first_line_is_not_taken_for_a_header(tmp_path, first):
  path = write(tmp_path, "r.csv", first + "\n3,4,5\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 1)


def test_header_with_an_empty_name(tmp_path):
  path = write(tmp_path, "r.csv", ",user,item,rating\n0,1,2,3\n")
  raw = text.read_delimited(path)
  np.testing.assert_array_equal(raw.user, [1])


def test_string_ids(tmp_path):
  path = write(tmp_path, "r.csv", "A2X,book-1,4\nB7,book-2,5\n")
  raw = text.read_delimited(path, string_ids=True)
  assert list(raw.user) == ["A2X", "B7"] and list(raw.item) == ["book-1", "book-2"]
  ratings = raw.to_ratings()
  assert ratings.num_users == 2 and list(ratings.user_ids) == ["A2X", "B7"]


@pytest.mark.parametrize("mode", ["gz", "zip"])
def test_compressed(tmp_path, mode):
  path = write(tmp_path, "r.csv." + mode, "1,2,3\n4,5,1\n", mode=mode, member="d/r.csv")
  raw = text.read_delimited(path, member="d/r.csv" if mode == "zip" else None)
  np.testing.assert_array_equal(raw.user, [1, 4])
  if mode == "zip":
    assert raw.paths == (f"{path}:d/r.csv",)


def test_zip_with_single_member_needs_no_name(tmp_path):
  path = write(tmp_path, "r.zip", "1,2,3\n", mode="zip", member="inner.csv")
  assert len(text.read_delimited(path)) == 1


def test_bom_crlf_blank_lines_and_line_numbers(tmp_path):
  path = tmp_path / "r.csv"
  path.write_bytes(b"\xef\xbb\xbfuser,item,rating\r\n1,2,3\r\n\r\n4,5,1\r\n\n6,7,2")
  raw = text.read_delimited(path)
  np.testing.assert_array_equal(raw.user, [1, 4, 6])
  np.testing.assert_array_equal(raw.line, [2, 4, 6])


@pytest.mark.parametrize("bad_line,why", [
    ("7,8", "expected 3 fields"),
    ("7,8,9,10", "expected 3 fields"),
    ("7,8,", "finite number"),
    ("7,8,abc", "finite number"),
    ("7,8,nan", "finite number"),
    ("7,8,NaN", "finite number"),
    ("7,8,inf", "finite number"),
    ("x7,8,1", "integer"),
    ("7,8.5,1", "integer"),
    ("99999999999999999999,8,1", "64 bits"),
    ("   ", "expected 3 fields"),
])
def test_malformed_line_reported_with_its_line_number(tmp_path, bad_line, why):
  lines = ["user,item,rating"] + [f"{u},{u + 1},3" for u in range(1, 6)]
  lines.insert(4, bad_line)  # physical line 5 (the header is line 1)
  path = write(tmp_path, "r.csv", "\n".join(lines) + "\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 5)
  assert why in str(err.value)


@pytest.mark.parametrize("delimiter,sep", [("::", "::"), ("\t", "\t"), (" ", " ")])
def test_malformed_timestamp_in_other_delimiters(tmp_path, delimiter, sep):
  rows = [sep.join(["1", "2", "3", "100"]), sep.join(["1", "3", "3", "1e"]),
          sep.join(["2", "2", "3", "100"])]
  path = write(tmp_path, "r.dat", "\n".join(rows) + "\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path, columns=(0, 1, 2, 3))
  assert_error(err, path, 2)
  assert "integer in field 4" in str(err.value)


def test_blank_lines_do_not_shift_line_numbers_in_errors(tmp_path):
  path = write(tmp_path, "r.csv", "1,2,3\n\n\n4,5,x\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 4)


@pytest.mark.parametrize("content,why", [
    ("", "empty file"), ("\n\n  \n", "empty file"),
    ("user,item,rating\n", "only the header"), ("user,item,rating\n\n", "only the header"),
])
def test_empty_and_header_only_files(tmp_path, content, why):
  path = write(tmp_path, "r.csv", content)
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, None)
  assert why in str(err.value)


def test_wrong_number_of_fields_without_columns(tmp_path):
  path = write(tmp_path, "r.csv", "1,2,3,4,5\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 1)
  assert "expected 3 or 4 fields" in str(err.value)


def test_column_index_past_the_fields(tmp_path):
  path = write(tmp_path, "r.csv", "1,2,3\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path, columns=(0, 1, 5))
  assert_error(err, path, 1)


def test_truncated_gzip(tmp_path):
  path = tmp_path / "r.csv.gz"
  path.write_bytes(gzip.compress(UNIQUE_ROWS.encode())[:-20])
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, None)
  assert "gzip" in str(err.value)


def test_truncated_zip(tmp_path):
  full = write(tmp_path, "full.zip", UNIQUE_ROWS, mode="zip", member="r.csv")
  path = tmp_path / "r.zip"
  path.write_bytes(full.read_bytes()[:len(full.read_bytes()) // 2])
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, None)
  assert "zip" in str(err.value)


def test_corrupt_zip_member(tmp_path):
  path = write(tmp_path, "r.zip", UNIQUE_ROWS, mode="zip", member="r.csv")
  data = bytearray(path.read_bytes())
  data[100:110] = b"\x00" * 10  # inside the compressed stream: CRC or inflate fails
  path.write_bytes(bytes(data))
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path, member="r.csv")
  assert f"{path}:r.csv" in str(err.value)


def test_zip_member_missing_or_ambiguous(tmp_path):
  path = tmp_path / "r.zip"
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("a.csv", "1,2,3\n")
    zf.writestr("b.csv", "1,2,3\n")
  with pytest.raises(DataFormatError, match="2 files"):
    text.read_delimited(path)
  with pytest.raises(DataFormatError, match="'c.csv'"):
    text.read_delimited(path, member="c.csv")


def test_missing_file(tmp_path):
  with pytest.raises(DataNotFoundError, match="no such file"):
    text.read_delimited(tmp_path / "nope.csv")


@pytest.mark.parametrize("blob", [
    bytes(range(256)) * 4, b"\x00\x01\x02,\xff\n\xfe,1,2\n", b'"1,2",3\n4,5,6\n',
    b"1,2,3\n4\r5,6\n", "1,2,\u00e9\n".encode("latin-1"), b"1::2::3::\n",
])
def test_garbage_never_leaks_other_errors(tmp_path, blob):
  path = tmp_path / "g.csv"
  path.write_bytes(blob)
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert str(path) in str(err.value)


def test_duplicates_error_names_second_occurrence(tmp_path):
  path = write(tmp_path, "r.csv", "u,i,r\n1,2,3\n1,3,4\n2,2,5\n1,2,1\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 5)
  assert "first at line 2" in str(err.value)


def test_duplicates_keep_last_and_mean(tmp_path):
  path = write(tmp_path, "r.csv", "1,2,3,10\n1,3,4,11\n1,2,1,12\n1,2,2,13\n")
  last = text.read_delimited(path, duplicates="keep_last")
  np.testing.assert_array_equal(last.item, [3, 2])
  np.testing.assert_array_equal(last.rating, [4, 2])
  np.testing.assert_array_equal(last.timestamp, [11, 13])
  np.testing.assert_array_equal(last.line, [2, 4])
  mean = text.read_delimited(path, duplicates="mean")
  np.testing.assert_array_equal(mean.item, [3, 2])
  np.testing.assert_allclose(mean.rating, [4, 2.0])
  np.testing.assert_array_equal(mean.timestamp, [11, 13])
  np.testing.assert_array_equal(mean.line, [2, 4])
  with pytest.raises(ValueError, match="duplicates"):
    text.read_delimited(path, duplicates="first")


def test_concat_keeps_each_rows_file(tmp_path):
  a = text.read_delimited(write(tmp_path, "a.csv", "1,2,3,7\n"))
  b = text.read_delimited(write(tmp_path, "b.csv", "5,6\t1\n".replace("\t", ",")))
  both = text.concat([a, b])
  assert both.where(0) == (str(tmp_path / "a.csv"), 1)
  assert both.where(1) == (str(tmp_path / "b.csv"), 1)
  assert both.timestamp is None  # b has none
  ratings = both.to_ratings()
  assert ratings.num_ratings == 2 and ratings.source.count(".csv") == 2


def test_one_million_lines_of_ratings_dat_parse(tmp_path):
  rng = np.random.default_rng(0)
  n = 1_000_209
  frame = pd.DataFrame({"u": rng.integers(1, 6041, n), "i": rng.integers(1, 3953, n),
                        "r": rng.integers(1, 6, n), "t": rng.integers(9e8, 1e9, n)})
  buf = io.BytesIO()
  frame.to_csv(buf, sep="\t", header=False, index=False)
  path = tmp_path / "ratings.dat"
  path.write_bytes(buf.getvalue().replace(b"\t", b"::"))
  raw = text.read_delimited(path, delimiter="::", duplicates="keep_last")
  assert len(raw) == len(frame.drop_duplicates(["u", "i"]))
  last = frame.drop_duplicates(["u", "i"], keep="last").sort_values(["u", "i"])
  got = pd.DataFrame({"u": raw.user, "i": raw.item, "r": raw.rating}).sort_values(["u", "i"])
  np.testing.assert_array_equal(got["r"].to_numpy(), last["r"].to_numpy())


# ----------------------------------------------------------------------------------------
# Ids are parsed exactly from their text.


@pytest.mark.parametrize("value,expected", [
    ("12", 12), ("-7", -7), ("+5", 5), (" 3 ", 3), ('"4"', 4), ("12.0", 12), ("1.", 1),
    ("1e3", 1000), ("1.5e1", 15), ("-0", 0), (str(2**63 - 1), 2**63 - 1),
    (str(-(2**63)), -(2**63)), ("9007199254740992.0", 2**53), ("18014398509481985", 2**54 + 1),
])
def test_exact_integer_accepts_exact_whole_numbers(value, expected):
  assert text.exact_integer(value) == (expected, None)


@pytest.mark.parametrize("value,why", [
    ("1.5", "fraction"), ("1.0000000000000001", "fraction"),
    ("18014398509481985.0", "float_limit"), ("9007199254740993.0", "float_limit"),
    ("1e30", "float_limit"), ("1e16", "float_limit"), (str(2**63), "range"),
    (str(-(2**63) - 1), "range"), ("9" * 5000, "range"), ("0x10", "syntax"),
    ("1_000", "syntax"), ("nan", "syntax"), ("inf", "syntax"), ("", "syntax"),
    ("\u0661", "syntax"), ("1.5" + "0" * 5000, "syntax"),
])
def test_exact_integer_refuses_what_a_float_would_round(value, why):
  assert text.exact_integer(value) == (None, why)


@pytest.mark.parametrize("content,line,field,name,got", [
    ("u,i,r\n1,10,4\n18014398509481985.0,11,3\n18014398509481984,12,5\n", 3, 1, "user id",
     "'18014398509481985.0' (a number written as a float is taken as an integer only up "
     "to 2**53"),
    ("u,i,r\n1.0000000000000001,10,4\n1,11,3\n", 2, 1, "user id",
     "'1.0000000000000001' (not a whole number)"),
    ("1::10::4::5\n2::1e30::3::6\n", 2, 2, "item id", "'1e30' (a number written as a float"),
    ("1\t10\t4\n2\t11.5\t3\n", 2, 2, "item id", "'11.5' (not a whole number)"),
    ("1 10 4\n2 11 3\n1e17  12 5\n", 3, 1, "user id", "'1e17' (a number written"),
])
def test_ids_that_a_float_would_round_are_refused_at_their_line(tmp_path, content, line,
                                                                 field, name, got):
  path = write(tmp_path, "r.txt", content)
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, line)
  assert f"expected an integer {name} in field {field}, got {got}" in str(err.value)


@pytest.mark.parametrize("sep", [",", "::", "\t", " "])
def test_an_id_written_as_a_float_keeps_the_large_ids_beside_it_exact(tmp_path, sep):
  # One float-written id sends pandas' int64 column through a float64, where
  # 18014398509481985 and 18014398509481984 are one number.
  rows = [("12.0", "1", "4"), ("18014398509481985", "2", "3"),
          ("18014398509481984", "3", "5"), ("1e3", "18014398509481985", "2")]
  path = write(tmp_path, "r.txt", "".join(sep.join(r) + "\n" for r in rows))
  raw = text.read_delimited(path)
  assert raw.user.dtype == np.int64
  assert raw.user.tolist() == [12, 2**54 + 1, 2**54, 1000]
  assert raw.item.tolist() == [1, 2, 3, 2**54 + 1]
  assert raw.to_ratings().num_users == 4


def test_short_float_written_ids_are_read_as_their_integers(tmp_path):
  path = write(tmp_path, "r.csv", "user,item,rating\n12.0,1e3,4.5\n13,7.,3\n-2.0,+5,1\n")
  raw = text.read_delimited(path)
  assert raw.user.tolist() == [12, 13, -2] and raw.item.tolist() == [1000, 7, 5]


def test_long_integer_ids_without_floats_stay_on_the_fast_path(tmp_path, monkeypatch):
  path = write(tmp_path, "r.csv", "u,i,r\n" + "".join(
      f"{2**62 + k},{k % 7},{k % 5 + 1}.5\n" for k in range(1000)))
  monkeypatch.setattr(text, "_exact_integers", lambda texts: pytest.fail("slow path"))
  raw = text.read_delimited(path)
  assert raw.user.tolist() == [2**62 + k for k in range(1000)]


def test_a_header_said_to_be_there_must_not_be_a_rating(tmp_path):
  path = write(tmp_path, "r.csv", "1,55,5\n2,56,4\n")
  with pytest.raises(DataFormatError, match=r"r.csv:1: expected a header line, got a line "
                     r"of numbers '1,55,5': the file has no header"):
    text.read_delimited(path, header="yes")
  path = write(tmp_path, "s.csv", "user,item,rating\nu1,55,5\n")
  raw = text.read_delimited(path, header="yes", string_ids=True)
  assert list(raw.user) == ["u1"]


def test_spaces_around_string_ids_are_not_part_of_them(tmp_path):
  path = write(tmp_path, "r.csv", "u1,b1,4\n u2 , b1,5\n")
  raw = text.read_delimited(path, string_ids=True)
  assert list(raw.user) == ["u1", "u2"] and list(raw.item) == ["b1", "b1"]
  path = write(tmp_path, "dup.csv", "u1,b1,4\nu2,b2,5\nu1, b1 ,1\n")
  with pytest.raises(DataFormatError, match=r"dup.csv:3: .*user u1 item b1 again"):
    text.read_delimited(path, string_ids=True)
  path = write(tmp_path, "blank.csv", "u1,b1,4\n  ,b2,5\n")
  with pytest.raises(DataFormatError, match=r"blank.csv:2: expected a non-empty id"):
    text.read_delimited(path, string_ids=True)


def test_string_ids_keep_float_looking_ids_as_written(tmp_path):
  path = write(tmp_path, "r.csv", "1.0,10,4\n1,10,3\n18014398509481985.0,10,5\n")
  raw = text.read_delimited(path, string_ids=True)
  assert list(raw.user) == ["1.0", "1", "18014398509481985.0"]


def test_a_nul_byte_past_the_first_64_kib_is_named(tmp_path):
  path = tmp_path / "r.csv"
  path.write_bytes(b"1,10,4\n" * 20000 + b"2,1\x001,3\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 20001)
  assert "got a NUL byte" in str(err.value)


@pytest.mark.parametrize("data,says", [
    # mtime=0 keeps the bytes, and so the test id, the same on every collection
    # (pytest-xdist refuses workers whose collected ids differ).
    (gzip.compress(gzip.compress(b"1,2,3\n", mtime=0), mtime=0),
     "gzip-compressed data (a file compressed twice?)"),
    (b"BZh91AY&SY" + bytes(30), "bzip2-compressed data; decompress it"),
    (b"\xfd7zXZ\x00" + bytes(30), "xz-compressed data"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(30), "an Excel .xls workbook"),
    (b"MATLAB 5.0 MAT-file, Platform: x" + bytes(30), "a MATLAB .mat file"),
    (b"PAR1" + bytes(30), "a Parquet file"),
])
def test_compressed_or_binary_contents_are_named(tmp_path, data, says):
  path = tmp_path / "r.csv.gz"
  path.write_bytes(data)
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, None)
  assert says in str(err.value)


def test_an_id_of_5000_digits_is_an_error_not_a_traceback(tmp_path):
  path = write(tmp_path, "r.csv", "1,10,4\n" + "9" * 5000 + ",11,3\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 2)
  assert "expected an integer user id that fits in 64 bits in field 1" in str(err.value)
  assert len(str(err.value)) < 400


def test_the_duplicates_error_names_the_flags_that_merge_repeats(tmp_path):
  path = write(tmp_path, "r.csv", "1,2,3\n1,2,4\n")
  with pytest.raises(DataFormatError) as err:
    text.read_delimited(path)
  assert_error(err, path, 2)
  assert "--config.data.duplicates=keep_last" in str(err.value)
  assert "--config.data.duplicates=mean" in str(err.value)


@pytest.mark.parametrize("policy", ["keep_last", "mean"])
def test_merging_duplicates_logs_one_warning_with_the_count(tmp_path, caplog, policy):
  # Pair (1, 2) three times and (3, 4) twice: two pairs merged, three ratings dropped.
  path = write(tmp_path, "r.csv", "1,2,3\n3,4,1\n1,2,4\n5,6,2\n1,2,5\n3,4,2\n")
  with caplog.at_level(logging.WARNING):
    raw = text.read_delimited(path, duplicates=policy)
  assert len(raw) == 3
  warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1, caplog.text
  message = warnings[0].getMessage()
  assert message.startswith(f"{path}: 2 (user, item) pairs occur more than once; "
                            f"data.duplicates={policy} ")
  assert "(3 ratings merged away)" in message
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    text.read_delimited(write(tmp_path, "ok.csv", "1,2,3\n"), duplicates=policy)
  assert not caplog.records
