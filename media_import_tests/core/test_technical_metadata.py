"""The parser against the real ffprobe/mediainfo output committed in media_import/samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from media_import.core.technical_metadata import (
    TechnicalMetadata,
    TechnicalMetadataError,
    parse_technical_metadata,
)

SAMPLES = Path(__file__).resolve().parents[2] / "media_import" / "samples"
MANIFEST: dict[str, Any] = json.loads((SAMPLES / "manifest.json").read_text())
TOOLS = ("ffprobe", "mediainfo")
# Every sample is a 1 s synthetic source; MP3 rounds up to whole 1152-sample frames.
NOMINAL_DURATION = 1.0
DURATION_TOLERANCE = 0.2

STREAMING_EXPECTED = {
    "video": {"container": "MP4", "expected_mime": "video/mp4", "media_kind": "video"},
    "audio": {"container": "MP3", "expected_mime": "audio/mpeg", "media_kind": "audio"},
}


def _cases() -> list[Any]:
    cases = []
    for master in MANIFEST["masters"]:
        for tool in TOOLS:
            cases.append(pytest.param(master, tool, id=f"{master['name']}-{tool}"))
    for kind, entry in MANIFEST["streaming"].items():
        sample = {**entry, **STREAMING_EXPECTED[kind], "filename": Path(entry["path"]).name}
        for tool in TOOLS:
            cases.append(pytest.param(sample, tool, id=f"streaming_{kind}-{tool}"))
    return cases


def _load(relative: str) -> Any:
    return json.loads((SAMPLES / relative).read_text())


def _ffprobe(name: str) -> dict[str, Any]:
    master = next(m for m in MANIFEST["masters"] if m["name"] == name)
    return _load(master["ffprobe"])


def _mediainfo(name: str) -> dict[str, Any]:
    master = next(m for m in MANIFEST["masters"] if m["name"] == name)
    return _load(master["mediainfo"])


def test_manifest_covers_every_required_container() -> None:
    pairs = {(m["container"], m["expected_mime"]) for m in MANIFEST["masters"]}
    assert pairs == {
        ("QuickTime", "video/quicktime"),
        ("MP4", "video/mp4"),
        ("MP4", "audio/mp4"),
        ("Matroska", "video/x-matroska"),
        ("Matroska", "audio/x-matroska"),
        ("MXF", "application/mxf"),
        ("AVI", "video/x-msvideo"),
        ("WAV", "audio/wav"),
        ("BWF", "audio/wav"),
        ("FLAC", "audio/flac"),
        ("AIFF", "audio/aiff"),
        ("MP3", "audio/mpeg"),
    }


@pytest.mark.parametrize(("sample", "tool"), _cases())
def test_real_sample(sample: dict[str, Any], tool: str) -> None:
    result = parse_technical_metadata(_load(sample[tool]))

    assert isinstance(result, TechnicalMetadata)
    assert result.tool == tool
    assert result.container == sample["container"]
    assert result.mime_type == sample["expected_mime"]
    assert result.has_video is (sample["media_kind"] == "video")
    assert result.has_audio is True
    assert result.filename == sample["filename"]
    assert result.duration_seconds == pytest.approx(NOMINAL_DURATION, abs=DURATION_TOLERANCE)
    assert len(result.audio_codecs) == 1
    assert len(result.video_codecs) == (1 if result.has_video else 0)


@pytest.mark.parametrize("name", [m["name"] for m in MANIFEST["masters"]])
def test_both_tools_agree(name: str) -> None:
    by_ffprobe = parse_technical_metadata(_ffprobe(name))
    by_mediainfo = parse_technical_metadata(_mediainfo(name))

    assert by_ffprobe.container == by_mediainfo.container
    assert by_ffprobe.mime_type == by_mediainfo.mime_type
    assert by_ffprobe.filename == by_mediainfo.filename
    assert by_ffprobe.duration_seconds == pytest.approx(by_mediainfo.duration_seconds, abs=0.01)


def test_ffprobe_codecs_use_ffmpeg_names() -> None:
    result = parse_technical_metadata(_ffprobe("mp4_video"))
    assert result.video_codecs == ("h264",)
    assert result.audio_codecs == ("aac",)


def test_mediainfo_codecs_use_mediainfo_names() -> None:
    result = parse_technical_metadata(_mediainfo("mp4_video"))
    assert result.video_codecs == ("AVC",)
    assert result.audio_codecs == ("AAC",)


def test_ffprobe_cover_art_is_not_video() -> None:
    document = _ffprobe("mp3")
    # The sample really carries an attached picture that ffprobe lists as a video stream.
    assert any(s["codec_type"] == "video" for s in document["streams"])

    result = parse_technical_metadata(document)
    assert result.has_video is False
    assert result.video_codecs == ()
    assert result.mime_type == "audio/mpeg"


def test_mediainfo_cover_art_is_an_image_track_not_video() -> None:
    document = _mediainfo("mp3")
    assert any(t["@type"] == "Image" for t in document["media"]["track"])

    assert parse_technical_metadata(document).has_video is False


def test_ffprobe_tells_quicktime_from_mp4_only_by_brand() -> None:
    quicktime, mp4 = _ffprobe("quicktime_mov"), _ffprobe("mp4_video")
    assert quicktime["format"]["format_name"] == mp4["format"]["format_name"]

    mp4["format"]["tags"]["major_brand"] = "qt  "
    assert parse_technical_metadata(mp4).container == "QuickTime"
    quicktime["format"]["tags"]["major_brand"] = "mp42"
    assert parse_technical_metadata(quicktime).mime_type == "video/mp4"


def test_ffprobe_isobmff_without_brand_is_classic_quicktime() -> None:
    document = _ffprobe("quicktime_mov")
    del document["format"]["tags"]["major_brand"]
    assert parse_technical_metadata(document).container == "QuickTime"


def test_mediainfo_quicktime_profile_without_codec_id() -> None:
    document = _mediainfo("quicktime_mov")
    general = document["media"]["track"][0]
    del general["CodecID"]
    assert general["Format_Profile"] == "QuickTime"
    assert parse_technical_metadata(document).mime_type == "video/quicktime"


def test_mp4_with_video_stays_video_even_with_m4a_brand() -> None:
    document = _ffprobe("mp4_video")
    document["format"]["tags"]["major_brand"] = "M4A "
    assert parse_technical_metadata(document).mime_type == "video/mp4"


def test_plain_wav_with_info_tags_is_not_bwf() -> None:
    # A LIST/INFO chunk yields generic tags like these; only bext-specific keys mean BWF.
    document = _ffprobe("wav")
    document["format"]["tags"].update({"comment": "side A", "encoded_by": "lab"})
    assert parse_technical_metadata(document).container == "WAV"


def test_bwf_detected_by_ffprobe_time_reference_alone() -> None:
    document = _ffprobe("wav")
    document["format"]["tags"]["time_reference"] = "0"
    assert parse_technical_metadata(document).container == "BWF"


def test_bwf_detected_by_mediainfo_format_profile() -> None:
    document = _mediainfo("wav")
    document["media"]["track"][0]["Format_Profile"] = "BWF"
    result = parse_technical_metadata(document)
    assert (result.container, result.mime_type) == ("BWF", "audio/wav")


def test_filename_is_reduced_to_basename() -> None:
    ffprobe = _ffprobe("wav")
    ffprobe["format"]["filename"] = "/mnt/conservatory/CAS/AO-CAS-00001.wav"
    mediainfo = _mediainfo("wav")
    mediainfo["media"]["@ref"] = "D:\\masters\\CAS\\AO-CAS-00001.wav"

    assert parse_technical_metadata(ffprobe).filename == "AO-CAS-00001.wav"
    assert parse_technical_metadata(mediainfo).filename == "AO-CAS-00001.wav"


def test_ffprobe_duration_falls_back_to_streams() -> None:
    document = _ffprobe("flac")
    del document["format"]["duration"]
    assert parse_technical_metadata(document).duration_seconds == pytest.approx(1.0)


def test_unknown_duration_is_none() -> None:
    document = _mediainfo("flac")
    document["media"]["track"][0]["Duration"] = "N/A"
    assert parse_technical_metadata(document).duration_seconds is None


def test_lone_mediainfo_track_object_is_accepted() -> None:
    # Some builds print "track" as an object when it has one element; with only General there
    # is no stream, which must be refused rather than crash.
    document = _mediainfo("wav")
    document["media"]["track"] = document["media"]["track"][0]
    with pytest.raises(TechnicalMetadataError, match="no audio or video"):
        parse_technical_metadata(document)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param({}, "neither ffprobe", id="empty-dict"),
        pytest.param([], "must be a JSON object, got list", id="list"),
        pytest.param("ffprobe", "got str", id="string"),
        pytest.param(None, "got NoneType", id="null"),
        pytest.param(
            {"name": "media_import", "version": "0.1.0", "dependencies": []},
            "neither ffprobe",
            id="other-program-json",
        ),
        pytest.param(
            {"exiftool": {"FileType": "MOV"}, "SourceFile": "x.mov"},
            "neither ffprobe",
            id="exiftool-like",
        ),
    ],
)
def test_unrecognised_documents(document: object, message: str) -> None:
    with pytest.raises(TechnicalMetadataError, match=message):
        parse_technical_metadata(document)


def test_error_is_a_value_error() -> None:
    assert issubclass(TechnicalMetadataError, ValueError)


@pytest.mark.parametrize("streams", [[], None], ids=["empty-list", "missing"])
def test_ffprobe_without_streams(streams: list[Any] | None) -> None:
    document = _ffprobe("mp4_video")
    if streams is None:
        del document["streams"]
    else:
        document["streams"] = streams
    with pytest.raises(TechnicalMetadataError, match="no streams"):
        parse_technical_metadata(document)


def test_ffprobe_with_only_data_streams() -> None:
    document = _ffprobe("mp4_video")
    document["streams"] = [{"index": 0, "codec_type": "data", "codec_tag_string": "tmcd"}]
    with pytest.raises(TechnicalMetadataError, match="no audio or video"):
        parse_technical_metadata(document)


def test_ffprobe_without_format_section() -> None:
    document = _ffprobe("mp4_video")
    del document["format"]
    with pytest.raises(TechnicalMetadataError, match="'format'"):
        parse_technical_metadata(document)


def test_mediainfo_with_only_general_track() -> None:
    document = _mediainfo("mp4_video")
    document["media"]["track"] = document["media"]["track"][:1]
    with pytest.raises(TechnicalMetadataError, match="no audio or video"):
        parse_technical_metadata(document)


def test_mediainfo_without_tracks() -> None:
    with pytest.raises(TechnicalMetadataError, match="no 'track'"):
        parse_technical_metadata({"media": {"@ref": "x.mov"}})
    with pytest.raises(TechnicalMetadataError, match="no General"):
        parse_technical_metadata({"media": {"@ref": "x.mov", "track": []}})


@pytest.mark.parametrize(
    "format_name", ["mpegts", "ogg", "asf", "mpeg", "image2", "webm_dash_manifest"]
)
def test_ffprobe_unknown_container(format_name: str) -> None:
    document = _ffprobe("mp4_video")
    document["format"]["format_name"] = format_name
    with pytest.raises(TechnicalMetadataError, match="unsupported container"):
        parse_technical_metadata(document)


@pytest.mark.parametrize("fmt", ["MPEG-TS", "Ogg", "Windows Media", "DV", ""])
def test_mediainfo_unknown_container(fmt: str) -> None:
    document = _mediainfo("mp4_video")
    document["media"]["track"][0]["Format"] = fmt
    with pytest.raises(TechnicalMetadataError, match="unsupported container"):
        parse_technical_metadata(document)


def test_3gpp_brand_is_unsupported() -> None:
    document = _ffprobe("mp4_video")
    document["format"]["tags"]["major_brand"] = "3gp5"
    with pytest.raises(TechnicalMetadataError, match="3GPP"):
        parse_technical_metadata(document)


def test_parser_does_not_mutate_input() -> None:
    document = _ffprobe("bwf")
    before = copy.deepcopy(document)
    parse_technical_metadata(document)
    assert document == before
