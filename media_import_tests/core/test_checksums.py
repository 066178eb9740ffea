"""md5sum sidecars and ETags as MD5s."""

from __future__ import annotations

import pytest

from media_import.core.checksums import (
    ChecksumEntry,
    ChecksumFileError,
    decode_md5sum,
    parse_md5sum,
    plain_md5_etag,
)

MD5_A = "0123456789abcdef0123456789abcdef"
MD5_B = "fedcba9876543210fedcba9876543210"


def test_text_mode_line() -> None:
    assert parse_md5sum(f"{MD5_A}  VO-BRD-00012.mp4\n") == [
        ChecksumEntry(MD5_A, "VO-BRD-00012.mp4")
    ]


def test_binary_mode_line() -> None:
    assert parse_md5sum(f"{MD5_A} *VO-BRD-00012.mov") == [ChecksumEntry(MD5_A, "VO-BRD-00012.mov")]


def test_several_lines_keep_their_order() -> None:
    text = f"{MD5_A}  VO-BRD-00012.mov\n{MD5_B} *VO-BRD-00012.mp4\n"
    assert parse_md5sum(text) == [
        ChecksumEntry(MD5_A, "VO-BRD-00012.mov"),
        ChecksumEntry(MD5_B, "VO-BRD-00012.mp4"),
    ]


def test_crlf_bom_and_blank_lines() -> None:
    text = f"\ufeff{MD5_A}  VO-BRD-00012.mov\r\n\r\n   \r\n{MD5_B}  VO-BRD-00012.mp4\r\n\r\n"
    assert parse_md5sum(text) == [
        ChecksumEntry(MD5_A, "VO-BRD-00012.mov"),
        ChecksumEntry(MD5_B, "VO-BRD-00012.mp4"),
    ]


def test_uppercase_hex_is_lowercased() -> None:
    assert parse_md5sum(f"{MD5_A.upper()}  x.mov")[0].md5 == MD5_A


def test_spaces_in_names_are_kept() -> None:
    assert parse_md5sum(f"{MD5_A}  VO-BRD-00012 master copy.mov")[0].filename == (
        "VO-BRD-00012 master copy.mov"
    )


@pytest.mark.parametrize(
    "name",
    [
        "./VO-BRD-00012.mov",
        "BRD/VO-BRD-00012.mov",
        "/mnt/archive/BRD/VO-BRD-00012.mov",
        "D:\\archivio\\BRD\\VO-BRD-00012.mov",  # Windows tools write backslashes
    ],
)
def test_paths_keep_the_basename(name: str) -> None:
    assert parse_md5sum(f"{MD5_A} *{name}") == [ChecksumEntry(MD5_A, "VO-BRD-00012.mov")]


@pytest.mark.parametrize(
    "line",
    [
        f"{MD5_A} VO-BRD-00012.mov",  # one space: no mode character (" " or "*")
        f"{MD5_A}VO-BRD-00012.mov",  # no separator
        f"{MD5_A[:-1]}  VO-BRD-00012.mov",  # 31 hex digits
        f"{MD5_A}0  VO-BRD-00012.mov",  # 33 hex digits
        f"{MD5_A[:-1]}g  VO-BRD-00012.mov",  # not hex
        f"{MD5_A}  ",  # no name
        f"  {MD5_A}  VO-BRD-00012.mov",  # leading spaces
        "MD5 (VO-BRD-00012.mov) = " + MD5_A,  # BSD format
        "not a checksum file",
    ],
)
def test_malformed_lines_make_the_file_unreadable(line: str) -> None:
    text = f"{MD5_B}  VO-BRD-00012.mp4\n{line}\n"
    with pytest.raises(ChecksumFileError, match="line 2"):
        parse_md5sum(text)


@pytest.mark.parametrize("text", ["", "\n", "\r\n\r\n", "\ufeff", "   \n\t\n"])
def test_empty_file_is_unreadable(text: str) -> None:
    with pytest.raises(ChecksumFileError, match="no checksum lines"):
        parse_md5sum(text)


def test_decode_utf8_names() -> None:
    body = f"{MD5_A}  VO-BRD-00012_città.mov\n".encode()
    assert decode_md5sum(body) == [ChecksumEntry(MD5_A, "VO-BRD-00012_città.mov")]


def test_decode_utf8_bom() -> None:
    body = b"\xef\xbb\xbf" + f"{MD5_A}  VO-BRD-00012.mov\r\n".encode()
    assert decode_md5sum(body) == [ChecksumEntry(MD5_A, "VO-BRD-00012.mov")]


@pytest.mark.parametrize(
    "body",
    [
        f"{MD5_A}  VO-BRD-00012_città.mov\n".encode("latin-1"),
        f"{MD5_A}  VO-BRD-00012.mov\n".encode("utf-16"),
        b"\xff\xfe\x00\x01binary",
    ],
)
def test_decode_non_utf8_is_unreadable(body: bytes) -> None:
    with pytest.raises(ChecksumFileError, match="not UTF-8"):
        decode_md5sum(body)


def test_checksum_file_error_is_a_value_error() -> None:
    assert issubclass(ChecksumFileError, ValueError)


# -- ETags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("etag", "md5"),
    [
        (MD5_A, MD5_A),
        (f'"{MD5_A}"', MD5_A),
        (MD5_A.upper(), MD5_A),
        (f'"{MD5_A.upper()}"', MD5_A),
        (f' "{MD5_A}" ', MD5_A),
    ],
)
def test_plain_md5_etag(etag: str, md5: str) -> None:
    assert plain_md5_etag(etag) == md5


@pytest.mark.parametrize(
    "etag",
    [
        None,
        "",
        '""',
        f"{MD5_A}-3",  # multipart: an MD5 of MD5s
        f'"{MD5_A}-3"',
        f'"{MD5_A}-10000"',
        f'W/"{MD5_A}"',  # weak ETag
        MD5_A[:-1],
        f"{MD5_A}0",
        "not-an-md5",
    ],
)
def test_etag_that_is_not_a_plain_md5(etag: str | None) -> None:
    assert plain_md5_etag(etag) is None
