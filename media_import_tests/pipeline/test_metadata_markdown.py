"""The metadata tables read in the UI show every character of the values they hold: rendered
with a CommonMark renderer (markdown-it-py, tables on), each cell's text is the value itself."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from media_import.core.checksums import ChecksumFileError, parse_md5sum
from media_import.defs.importing.metadata import markdown_table, rejections_preview
from media_import.phases import Rejection


class _Cells(HTMLParser):
    """The text of each <td> of the rendered HTML, row by row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rendered_cells(markdown: str) -> list[list[str]]:
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)
    parser = _Cells()
    parser.feed(html)
    return [row for row in parser.rows if row]  # the header row has <th>, not <td>


def _md5sum_message() -> str:
    with pytest.raises(ChecksumFileError) as raised:
        parse_md5sum("not a checksum line\n")
    return str(raised.value)


AWKWARD = [
    "<b>bold?</b> & &amp; entities",
    "a | b || c",
    "*stars* and _underscores_ and __double__",
    "`code` and ``more``",
    "[a link](http://example.invalid) ![img](x.png)",
    "~~struck~~ \\ backslash \\| escaped pipe",
    "BRD/VO-BRD-00012 copia è.pdf",
]


def test_the_real_md5sum_message_keeps_its_placeholders() -> None:
    message = _md5sum_message()
    assert "<md5>  <file name>" in message  # the text the UI used to lose
    rejection = Rejection("BRD/VO-BRD-00001.md5", "VO-BRD-00001", "unreadable_checksum", message)

    cells = rendered_cells(str(rejections_preview([rejection]).value))

    assert cells == [["unreadable_checksum", "BRD/VO-BRD-00001.md5", message]]


@pytest.mark.parametrize("text", AWKWARD)
def test_markdown_and_html_syntax_is_shown_as_written(text: str) -> None:
    table = markdown_table(("value", "same again"), [(text, text)], 1)
    assert rendered_cells(table) == [[text, text]]


def test_a_newline_stays_in_its_row() -> None:
    table = markdown_table(("a", "b"), [("first\nsecond", "x")], 1)
    assert rendered_cells(table) == [["first second", "x"]]
