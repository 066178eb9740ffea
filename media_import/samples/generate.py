#!/usr/bin/env python3
"""Regenerate the committed media samples with the real tools.

Needs ffmpeg, ffprobe, mediainfo and ps2pdf (Debian: ``apt-get install -y ffmpeg mediainfo
ghostscript``). Run from anywhere: ``python3 media_import/samples/generate.py``.

The masters are written to a temporary directory and thrown away: like the real conservatory
masters they never reach the bucket, only their technical metadata, md5 and size are kept. The
streaming copies, the QC report, the tools' JSON output and ``manifest.json`` are written next to
this script. The tools' JSON is stored exactly as printed (never edited).

This script is not run by the tests; the committed output is all that is needed at runtime.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Tiny synthetic sources: 1 second, 64x48, 5 fps, low sample rates.
VIDEO_SRC = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1"]
AUDIO_SRC = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1"]
# MXF only accepts broadcast frame rates and 48 kHz audio.
VIDEO_SRC_25 = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1"]
AUDIO_SRC_48K = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"]
COVER_SRC = ["-f", "lavfi", "-i", "color=c=red:size=16x16:duration=0.2:rate=1"]

# name, filename, media_kind, expected_mime, container, ffmpeg arguments (inputs + options)
MASTERS: list[tuple[str, str, str, str, str, list[str]]] = [
    (
        "quicktime_mov",
        "master.mov",
        "video",
        "video/quicktime",
        "QuickTime",
        # The mov muxer writes major_brand "qt  ".
        [*VIDEO_SRC, *AUDIO_SRC, "-c:v", "mjpeg", "-q:v", "20", "-c:a", "pcm_s16le", "-f", "mov"],
    ),
    (
        "mp4_video",
        "master.mp4",
        "video",
        "video/mp4",
        "MP4",
        # The mp4 muxer writes major_brand "isom".
        [
            *VIDEO_SRC,
            *AUDIO_SRC,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "16k",
            "-f",
            "mp4",
        ],
    ),
    (
        "matroska_video",
        "master.mkv",
        "video",
        "video/x-matroska",
        "Matroska",
        [
            *VIDEO_SRC,
            *AUDIO_SRC,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "flac",
            "-f",
            "matroska",
        ],
    ),
    (
        "mxf_video",
        "master.mxf",
        "video",
        "application/mxf",
        "MXF",
        [
            *VIDEO_SRC_25,
            *AUDIO_SRC_48K,
            "-c:v",
            "mpeg2video",
            "-b:v",
            "100k",
            "-c:a",
            "pcm_s16le",
            "-f",
            "mxf",
        ],
    ),
    (
        "avi_video",
        "master.avi",
        "video",
        "video/x-msvideo",
        "AVI",
        [*VIDEO_SRC, *AUDIO_SRC, "-c:v", "mpeg4", "-q:v", "20", "-c:a", "pcm_s16le", "-f", "avi"],
    ),
    (
        "wav",
        "master.wav",
        "audio",
        "audio/wav",
        "WAV",
        [*AUDIO_SRC, "-c:a", "pcm_s16le", "-f", "wav"],
    ),
    (
        "bwf",
        "master_bwf.wav",
        "audio",
        "audio/wav",
        "BWF",
        # A Broadcast Wave File is a WAV with a "bext" chunk; these keys fill it.
        [
            *AUDIO_SRC,
            "-c:a",
            "pcm_s16le",
            "-write_bext",
            "1",
            "-metadata",
            "description=Transfer of CAS tape side A",
            "-metadata",
            "originator=Archive digitisation lab",
            "-metadata",
            "originator_reference=AO-CAS-00001",
            "-metadata",
            "origination_date=2024-03-15",
            "-metadata",
            "origination_time=10:30:00",
            "-metadata",
            "time_reference=480000",
            "-metadata",
            "coding_history=A=ANALOGUE,M=stereo,T=Studer A810\r\n"
            "A=PCM,F=8000,W=16,M=mono,T=ffmpeg\r\n",
            "-f",
            "wav",
        ],
    ),
    (
        "flac",
        "master.flac",
        "audio",
        "audio/flac",
        "FLAC",
        [*AUDIO_SRC, "-c:a", "flac", "-f", "flac"],
    ),
    (
        "aiff",
        "master.aif",
        "audio",
        "audio/aiff",
        "AIFF",
        [*AUDIO_SRC, "-c:a", "pcm_s16be", "-f", "aiff"],
    ),
    (
        "mp3",
        "master.mp3",
        "audio",
        "audio/mpeg",
        "MP3",
        # Embedded cover art: ffprobe shows it as a video stream with disposition attached_pic,
        # which must not make the asset count as video.
        [
            *AUDIO_SRC,
            *COVER_SRC,
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-frames:v",
            "1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "32k",
            "-c:v",
            "png",
            "-disposition:v",
            "attached_pic",
            "-id3v2_version",
            "3",
            "-metadata:s:v",
            "title=Album cover",
            "-metadata:s:v",
            "comment=Cover (front)",
            "-f",
            "mp3",
        ],
    ),
    (
        "mp4_audio",
        "master.m4a",
        "audio",
        "audio/mp4",
        "MP4",
        # The ipod muxer (what ffmpeg picks for .m4a) writes major_brand "M4A ".
        [*AUDIO_SRC, "-c:a", "aac", "-b:a", "16k", "-f", "ipod"],
    ),
    (
        "matroska_audio",
        "master.mka",
        "audio",
        "audio/x-matroska",
        "Matroska",
        [*AUDIO_SRC, "-c:a", "flac", "-f", "matroska"],
    ),
]

STREAMING: dict[str, tuple[str, list[str]]] = {
    "video": (
        "streaming/video.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=22050:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            "35",
            "-c:a",
            "aac",
            "-b:a",
            "24k",
            "-ac",
            "1",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ],
    ),
    "audio": (
        "streaming/audio.mp3",
        [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=22050:duration=1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "32k",
            "-ac",
            "1",
            "-f",
            "mp3",
        ],
    ),
}

QC_REPORT_PS = """%!PS-Adobe-3.0
%%Pages: 1
%%EndComments
%%Page: 1 1
/Helvetica findfont 16 scalefont setfont
72 740 moveto (Quality control report) show
/Helvetica findfont 11 scalefont setfont
72 710 moveto (Transfer checked: picture, sound, sync, dropouts.) show
72 692 moveto (Result: PASSED) show
72 674 moveto (Operator: QC station 2) show
showpage
%%EOF
"""


def run(args: list[str], cwd: Path) -> bytes:
    done = subprocess.run(args, cwd=cwd, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def ffmpeg(args: list[str], output: str, cwd: Path) -> None:
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, output], cwd)


def describe(filename: str, cwd: Path, name: str) -> dict[str, str]:
    """Run both tools exactly as the archive's workflow does and store their output unedited."""
    ffprobe_out = run(
        [
            "ffprobe",
            "-v",
            "quiet",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            filename,
        ],
        cwd,
    )
    mediainfo_out = run(["mediainfo", "--Output=JSON", filename], cwd)
    paths = {
        "ffprobe": f"metadata/{name}.ffprobe.json",
        "mediainfo": f"metadata/{name}.mediainfo.json",
    }
    (HERE / paths["ffprobe"]).write_bytes(ffprobe_out)
    (HERE / paths["mediainfo"]).write_bytes(mediainfo_out)
    return paths


def fingerprint(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    return {"md5": hashlib.md5(data).hexdigest(), "size": len(data)}


def main() -> int:
    for sub in ("metadata", "streaming", "qc", "misc"):
        (HERE / sub).mkdir(exist_ok=True)
    manifest: dict[str, object] = {"masters": [], "streaming": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, filename, kind, mime, container, args in MASTERS:
            # ffmpeg runs in the temp dir with a bare file name, so the tools record a basename.
            ffmpeg(args, filename, tmp)
            manifest["masters"].append(
                {
                    "name": name,
                    "filename": filename,
                    "media_kind": kind,
                    "expected_mime": mime,
                    "container": container,
                    **fingerprint(tmp / filename),
                    **describe(filename, tmp, name),
                }
            )
        for kind, (rel_path, args) in STREAMING.items():
            ffmpeg(args, str(HERE / rel_path), tmp)
            local_name = Path(rel_path).name
            (tmp / local_name).write_bytes((HERE / rel_path).read_bytes())
            manifest["streaming"][kind] = {
                "path": rel_path,
                **fingerprint(HERE / rel_path),
                **describe(local_name, tmp, f"streaming_{kind}"),
            }
        (tmp / "report.ps").write_text(QC_REPORT_PS)
        run(["ps2pdf", "-dCompatibilityLevel=1.4", "report.ps", str(HERE / "qc/report.pdf")], tmp)
    manifest["qc_report"] = {"path": "qc/report.pdf", **fingerprint(HERE / "qc/report.pdf")}
    # A stray photo for the sample archive's excluded DOCUMENTAZIONE_FOTOGRAFICA/ folder.
    ffmpeg(
        ["-f", "lavfi", "-i", "testsrc=size=64x48:duration=1", "-frames:v", "1", "-q:v", "10"],
        str(HERE / "misc/foto.jpg"),
        HERE,
    )
    manifest["photo"] = {"path": "misc/foto.jpg", **fingerprint(HERE / "misc/foto.jpg")}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
