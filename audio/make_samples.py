"""Rebuild the sample clips: Vietnamese speech by espeak-ng, a chime by sox.

Run from the repository root: `.venv/bin/python audio/make_samples.py`.
The Tày (tyz), Dao (ium), Jrai (jra) and Bahnar (bdq) variants are placeholders read by espeak-ng's
generic voice (it has none for those languages); replace them with recordings
by a translator before real use.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from broadcaster.audio.library import ClipKind, import_clip, load_library

ROOT = Path(__file__).resolve().parent

SPEECH = [
    (
        "ban-tin-5k",
        "vi",
        ClipKind.BULLETIN,
        "Bản tin 5K",
        "Bản tin phòng chống dịch COVID-19. Người dân thực hiện nghiêm thông điệp 5K: "
        "khẩu trang, khử khuẩn, khoảng cách, không tụ tập, khai báo y tế.",
    ),
    (
        "ban-tin-5k",
        "tyz",
        ClipKind.BULLETIN,
        "Bản tin 5K (tiếng Tày, bản giữ chỗ)",
        "Tay language placeholder. Five K message.",
    ),
    (
        "gian-cach",
        "vi",
        ClipKind.BULLETIN,
        "Giãn cách xã hội",
        "Thực hiện giãn cách xã hội. Người dân chỉ ra khỏi nhà khi thật cần thiết.",
    ),
    (
        "tiem-vac-xin",
        "vi",
        ClipKind.BULLETIN,
        "Lịch tiêm vắc xin",
        "Trạm y tế xã tổ chức tiêm vắc xin phòng COVID-19. Người dân mang theo căn cước công dân.",
    ),
    (
        "tiem-vac-xin",
        "ium",
        ClipKind.BULLETIN,
        "Lịch tiêm vắc xin (tiếng Dao, bản giữ chỗ)",
        "Dao language placeholder. Vaccination today.",
    ),
    (
        "thong-bao-khan",
        "vi",
        ClipKind.NOTICE,
        "Thông báo khẩn của Ban Chỉ đạo",
        "Thông báo khẩn của Ban Chỉ đạo phòng chống dịch huyện. Phát hiện ca mắc mới "
        "trên địa bàn. Người dân theo dõi sức khỏe và khai báo y tế ngay.",
    ),
    (
        "tiep-song-vov",
        "vi",
        ClipKind.RELAY,
        "Giới thiệu tiếp sóng VOV",
        "Sau đây là chương trình tiếp sóng Đài Tiếng nói Việt Nam.",
    ),
    (
        "ban-tin-huyen-du-phong",
        "vi",
        ClipKind.RELAY,
        "Bản tin của huyện (phát khi mất đường truyền)",
        "Đường truyền bản tin của huyện đang gián đoạn. Người dân thực hiện nghiêm thông điệp "
        "5K và theo dõi thông báo của Ban Chỉ đạo phòng chống dịch huyện.",
    ),
    (
        "dai-gia-lai-du-phong",
        "vi",
        ClipKind.RELAY,
        "Tiếp sóng Đài Gia Lai (phát khi mất đường truyền)",
        "Chương trình tiếp sóng Đài Phát thanh Truyền hình Gia Lai đang gián đoạn. "
        "Người dân đeo khẩu trang, rửa tay, giữ khoảng cách và khai báo y tế.",
    ),
    (
        "khai-bao-y-te",
        "vi",
        ClipKind.BULLETIN,
        "Vận động khai báo y tế toàn dân",
        "Người dân thực hiện khai báo y tế toàn dân trên ứng dụng hoặc tại trạm y tế xã.",
    ),
    (
        "khai-bao-y-te",
        "jra",
        ClipKind.BULLETIN,
        "Vận động khai báo y tế (tiếng Jrai, bản giữ chỗ)",
        "Jrai language placeholder. Health declaration.",
    ),
    (
        "khai-bao-y-te",
        "bdq",
        ClipKind.BULLETIN,
        "Vận động khai báo y tế (tiếng Ba Na, bản giữ chỗ)",
        "Bahnar language placeholder. Health declaration.",
    ),
]


def main() -> None:
    library = load_library(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        chime = Path(tmp) / "chime.wav"
        subprocess.run(
            [
                "sox",
                "-n",
                "-r",
                "48000",
                "-c",
                "1",
                str(chime),
                "synth",
                "0.45",
                "sine",
                "880",
                "fade",
                "0",
                "0.45",
                "0.35",
                ":",
                "synth",
                "0.9",
                "sine",
                "660",
                "fade",
                "0",
                "0.9",
                "0.8",
            ],
            check=True,
        )
        library, _ = import_clip(
            library,
            _opus(chime),
            clip_id="chime",
            title="Chuông báo",
            language="zxx",
            kind=ClipKind.CHIME,
            replace=True,
        )
        for clip_id, language, kind, title, text in SPEECH:
            wav = Path(tmp) / f"{clip_id}.{language}.wav"
            voice = ["-v", "vi"] if language == "vi" else []
            subprocess.run(["espeak-ng", *voice, "-s", "150", "-w", str(wav), text], check=True)
            library, clip = import_clip(
                library,
                _opus(wav),
                clip_id=clip_id,
                title=title,
                language=language,
                kind=kind,
                replace=True,
            )
            print(clip.id, clip.language, f"{clip.duration:.2f}s", file=sys.stderr)


def _opus(wav: Path) -> Path:
    out = wav.with_suffix(".ogg")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(wav),
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
            str(out),
        ],
        check=True,
    )
    return out


if __name__ == "__main__":
    main()
