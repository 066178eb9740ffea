"""QC reports must really be PDFs: checked on their first bytes, not their extension."""

PDF_MAGIC = b"%PDF-"
# Enough bytes to find the magic even behind a UTF-8 BOM or stray whitespace some tools emit.
PDF_HEAD_BYTES = 1024


def looks_like_pdf(head: bytes) -> bool:
    """True when the header (within the first 1 KiB, as PDF readers accept) is `%PDF-`."""
    return head.find(PDF_MAGIC, 0, PDF_HEAD_BYTES) >= 0  # no copy of the head
