"""Parse a master's technical-metadata sidecar (ffprobe or mediainfo JSON).

The conservatory master is never in the bucket; its sidecar JSON is the only evidence of what it
is, so the master's MIME type is derived here and never from the streaming copy's extension.

Both tools are supported as they actually print (checked against ffprobe 5.1 and MediaInfoLib
23.04, see ``media_import/samples``):

* ffprobe: ``ffprobe -v quiet -print_format json -show_format -show_streams <master>``.
* mediainfo: ``mediainfo --Output=JSON <master>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from media_import.core.inventory import basename

__all__ = ["TechnicalMetadata", "TechnicalMetadataError", "parse_technical_metadata"]


class TechnicalMetadataError(ValueError):
    """Sidecar JSON is not ffprobe/mediainfo output or is unusable. Message says why."""


# Not frozen, as the plans of media_import.core.assembly: built for every asset in phase 2.
@dataclass(slots=True)
class TechnicalMetadata:
    tool: str  # "ffprobe" or "mediainfo"
    container: str  # "QuickTime", "MP4", "Matroska", "MXF", "AVI", "WAV", "BWF", "FLAC", ...
    mime_type: str
    has_video: bool  # at least one real video stream (cover art does not count)
    has_audio: bool
    duration_seconds: float | None
    filename: str | None  # the master's basename as the tool recorded it
    video_codecs: tuple[str, ...]  # in the tool's own vocabulary ("h264" vs "AVC")
    audio_codecs: tuple[str, ...]


# MIME type per container when the file has video (or is not a video-capable container).
_MIME = {
    "QuickTime": "video/quicktime",
    "MP4": "video/mp4",
    "Matroska": "video/x-matroska",
    "MXF": "application/mxf",
    "AVI": "video/x-msvideo",
    "WAV": "audio/wav",
    "BWF": "audio/wav",
    "FLAC": "audio/flac",
    "AIFF": "audio/aiff",
    "MP3": "audio/mpeg",
}
# Containers whose audio-only files have their own registered audio/* type.
_AUDIO_ONLY_MIME = {"MP4": "audio/mp4", "Matroska": "audio/x-matroska"}

# ffprobe "format_name" (the demuxer's name list) -> container.
_FFPROBE_FORMATS = {
    "matroska,webm": "Matroska",
    "mxf": "MXF",
    "avi": "AVI",
    "wav": "WAV",
    "flac": "FLAC",
    "aiff": "AIFF",
    "mp3": "MP3",
}
# ffprobe reports QuickTime and every ISO-BMFF flavour with this single demuxer name.
_FFPROBE_ISOBMFF = "mov,mp4,m4a,3gp,3g2,mj2"

# mediainfo General "Format" -> container ("MPEG-4" is resolved by brand, "Wave" by bext).
_MEDIAINFO_FORMATS = {
    "Matroska": "Matroska",
    "WebM": "Matroska",
    "MXF": "MXF",
    "AVI": "AVI",
    "Wave": "WAV",
    "FLAC": "FLAC",
    "AIFF": "AIFF",
    "MPEG Audio": "MP3",
}

# ffmpeg's wav demuxer always sets time_reference when a bext chunk exists; the other keys are
# bext-only too. (description/originator are remapped to generic tags such as "comment" and
# "encoded_by", which a plain WAV's LIST/INFO chunk can also produce, so they prove nothing.)
_FFPROBE_BEXT_TAGS = frozenset({"time_reference", "coding_history", "originator_reference", "umid"})


def parse_technical_metadata(document: object) -> TechnicalMetadata:
    """Parse the already-decoded JSON of an ffprobe or mediainfo sidecar.

    The tool is detected from the document's shape. Raises TechnicalMetadataError for anything
    unrecognised: not a dict, neither tool, unknown container, no audio or video stream.
    """
    if not isinstance(document, dict):
        raise TechnicalMetadataError(
            f"technical metadata must be a JSON object, got {type(document).__name__}"
        )
    if "media" in document:
        return _parse_mediainfo(document)
    if "format" in document or "streams" in document:
        return _parse_ffprobe(document)
    raise TechnicalMetadataError(
        "JSON is neither ffprobe output (no 'format'/'streams') nor mediainfo output (no 'media')"
    )


# --- ffprobe -------------------------------------------------------------------------------------


def _parse_ffprobe(document: Mapping[str, Any]) -> TechnicalMetadata:
    fmt = _require_mapping(document.get("format"), "ffprobe 'format'")
    streams = document.get("streams")
    if not isinstance(streams, list) or not streams:
        raise TechnicalMetadataError("ffprobe output lists no streams")
    streams = [s for s in streams if isinstance(s, dict)]
    video = [s for s in streams if s.get("codec_type") == "video" and not _is_cover_art(s)]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    tags = _lower_keys(fmt.get("tags"))
    container = _ffprobe_container(str(fmt.get("format_name", "")), tags)
    duration = _to_float(fmt.get("duration"))
    if duration is None:
        duration = _max_or_none(_to_float(s.get("duration")) for s in streams)
    return _build(
        tool="ffprobe",
        container=container,
        video_codecs=_codecs(video, "codec_name"),
        audio_codecs=_codecs(audio, "codec_name"),
        has_video=bool(video),
        has_audio=bool(audio),
        duration=duration,
        filename=_basename(fmt.get("filename")),
    )


def _is_cover_art(stream: Mapping[str, Any]) -> bool:
    # Embedded pictures (ID3 APIC, FLAC PICTURE, MP4 covr) are decoded as one-frame "video"
    # streams flagged attached_pic; they are artwork, not picture content.
    disposition = stream.get("disposition")
    return isinstance(disposition, dict) and bool(disposition.get("attached_pic"))


def _ffprobe_container(format_name: str, tags: Mapping[str, str]) -> str:
    if format_name == _FFPROBE_ISOBMFF:
        return _isobmff_container(tags.get("major_brand"))
    container = _FFPROBE_FORMATS.get(format_name)
    if container is None:
        raise TechnicalMetadataError(f"unsupported container: ffprobe format_name {format_name!r}")
    if container == "WAV" and _FFPROBE_BEXT_TAGS & tags.keys():
        return "BWF"
    return container


# --- mediainfo -----------------------------------------------------------------------------------


def _parse_mediainfo(document: Mapping[str, Any]) -> TechnicalMetadata:
    media = _require_mapping(document.get("media"), "mediainfo 'media'")
    tracks = media.get("track")
    if isinstance(tracks, dict):  # a lone track may be printed as an object, not a list
        tracks = [tracks]
    if not isinstance(tracks, list):
        raise TechnicalMetadataError("mediainfo output has no 'track' list")
    by_type = _tracks_by_type(tracks)
    general = by_type.get("General")
    if not general:
        raise TechnicalMetadataError("mediainfo output has no General track")
    # mediainfo reports embedded cover art as an "Image" track (or General "Cover"), never as
    # "Video", so every Video track is real picture content.
    video, audio = by_type.get("Video", []), by_type.get("Audio", [])
    return _build(
        tool="mediainfo",
        container=_mediainfo_container(general[0]),
        video_codecs=_codecs(video, "Format"),
        audio_codecs=_codecs(audio, "Format"),
        has_video=bool(video),
        has_audio=bool(audio),
        duration=_to_float(general[0].get("Duration")),
        filename=_basename(media.get("@ref") or general[0].get("CompleteName")),
    )


def _tracks_by_type(tracks: list[Any]) -> dict[str, list[Mapping[str, Any]]]:
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for track in tracks:
        if isinstance(track, dict):
            by_type.setdefault(str(track.get("@type")), []).append(track)
    return by_type


def _mediainfo_container(general: Mapping[str, Any]) -> str:
    fmt = str(general.get("Format", ""))
    if fmt in ("MPEG-4", "QuickTime"):
        # CodecID carries the ftyp major brand; old QuickTime files have no ftyp at all and
        # only Format_Profile "QuickTime" tells them apart.
        if fmt == "QuickTime" or general.get("Format_Profile") == "QuickTime":
            return "QuickTime"
        return _isobmff_container(general.get("CodecID"))
    container = _MEDIAINFO_FORMATS.get(fmt)
    if container is None:
        raise TechnicalMetadataError(f"unsupported container: mediainfo Format {fmt!r}")
    if container == "WAV" and _mediainfo_has_bext(general):
        return "BWF"
    return container


def _mediainfo_has_bext(general: Mapping[str, Any]) -> bool:
    # MediaInfoLib 23.04 keeps Format "Wave" and flags the chunk in "extra" (bext_Present: Yes);
    # other versions name the profile instead, so accept either.
    extra = general.get("extra")
    if isinstance(extra, dict) and any(str(k).lower().startswith("bext") for k in extra):
        return True
    profile = f"{general.get('Format_Profile', '')} {general.get('Format_Settings', '')}"
    return "BWF" in profile or "Broadcast" in profile


# --- shared --------------------------------------------------------------------------------------


def _isobmff_container(brand: object) -> str:
    """Tell QuickTime from MP4 by the ftyp major brand (both tools print it verbatim)."""
    if brand is None or str(brand).strip() == "" or str(brand).startswith("qt"):
        # No ftyp box at all is the classic QuickTime layout; "qt  " is Apple's own brand.
        return "QuickTime"
    if str(brand).startswith(("3gp", "3g2")):
        raise TechnicalMetadataError(f"unsupported container: 3GPP brand {str(brand)!r}")
    return "MP4"


def _build(
    *,
    tool: str,
    container: str,
    video_codecs: tuple[str, ...],
    audio_codecs: tuple[str, ...],
    has_video: bool,
    has_audio: bool,
    duration: float | None,
    filename: str | None,
) -> TechnicalMetadata:
    if not has_video and not has_audio:
        raise TechnicalMetadataError(f"{tool} output describes no audio or video stream")
    mime = _MIME[container]
    if not has_video and container in _AUDIO_ONLY_MIME:
        mime = _AUDIO_ONLY_MIME[container]
    return TechnicalMetadata(
        tool=tool,
        container=container,
        mime_type=mime,
        has_video=has_video,
        has_audio=has_audio,
        duration_seconds=duration,
        filename=filename,
        video_codecs=video_codecs,
        audio_codecs=audio_codecs,
    )


def _require_mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TechnicalMetadataError(f"{what} is missing or not an object")
    return value


def _lower_keys(tags: object) -> dict[str, str]:
    # Tag case depends on the demuxer (Matroska prints "ENCODER", WAV "encoder").
    if not isinstance(tags, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in tags.items()}


def _codecs(streams: Iterable[Mapping[str, Any]], key: str) -> tuple[str, ...]:
    return tuple(str(s[key]) for s in streams if s.get(key))


def _to_float(value: object) -> float | None:
    # Both tools print numbers as strings; "N/A" and garbage mean unknown, not an error.
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) and result >= 0 else None


def _max_or_none(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _basename(path: object) -> str | None:
    # The tools record the path they were given, which may be absolute or a Windows path.
    if not isinstance(path, str) or not path.strip():
        return None
    return basename(path.rstrip("\\/")) or None
