"""Regenerates the Pillow-made fixtures in this folder and their expected pixel digests.

These are the cases the Rust tests cannot build with Rust encoders (lossy and animated WebP,
Pillow's own CMYK JPEG, LZW/Deflate/PackBits/CMYK TIFF, palette and 16-bit BMP, Pillow GIFs),
each with the SHA-256 of the pixels Pillow 13 returns for `Image.open(f).convert("RGB")`, which
`tests/media/conformance.rs` compares against. All content is synthetic (gradients and
shapes). Run with Pillow 13.0.0 and numpy installed:

    python3 generate.py   # from this folder

Not run by CI: the outputs are committed.
"""
import hashlib
import io
import os
import struct

import numpy as np
from PIL import Image, ImageDraw, TiffImagePlugin

HERE = os.path.dirname(os.path.abspath(__file__))


def synthetic(w, h):
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), ((x * 3 + y * 5) * 4) % 256], -1)
    im = Image.fromarray(rgb.astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse((w // 5, h // 5, w * 3 // 4, h * 4 // 5), fill=(230, 180, 40))
    d.rectangle((w // 2, 2, w - 3, h // 3), fill=(20, 60, 200))
    return im


def bmp16(w, h, masks):
    row_bytes = (w * 2 + 3) & ~3
    pixels = b""
    for y in range(h):
        row = b"".join(struct.pack("<H", (x * 2311 + y * 977) % 65536) for x in range(w))
        pixels += row + b"\0" * (row_bytes - len(row))
    header = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3 if masks else 0, len(pixels), 2835, 2835, 0, 0)
    extra = struct.pack("<III", *masks) if masks else b""
    offset = 14 + len(header) + len(extra)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + extra + pixels


def main():
    im = synthetic(40, 28)
    a = np.asarray(im.convert("RGBA")).copy()
    a[::3, :, 3] = 0
    a[1::3, :, 3] = 128
    rgba = Image.fromarray(a)
    second = im.convert("RGBA").rotate(20)
    ex = Image.Exif()
    ex[0x0112] = 6
    orient = TiffImagePlugin.ImageFileDirectory_v2()
    orient[274] = 6
    files = {
        "cmyk.jpg": lambda f: im.convert("CMYK").save(f, "JPEG", quality=90),
        "progressive.jpg": lambda f: im.save(f, "JPEG", progressive=True, quality=85),
        "grey.jpg": lambda f: im.convert("L").save(f, "JPEG", quality=90),
        "exif-orientation-6.jpg": lambda f: im.save(f, "JPEG", exif=ex.tobytes()),
        "lossy.webp": lambda f: im.save(f, "WEBP", quality=80),
        "lossy-alpha.webp": lambda f: rgba.save(f, "WEBP", quality=80),
        "lossless-alpha-exact.webp": lambda f: rgba.save(f, "WEBP", lossless=True, exact=True),
        "animated.webp": lambda f: rgba.save(f, "WEBP", save_all=True, append_images=[second], lossless=True, exact=True),
        "animated-lossy.webp": lambda f: im.convert("RGBA").save(f, "WEBP", save_all=True, append_images=[second], quality=70),
        "palette.gif": lambda f: im.quantize(32).save(f, "GIF"),
        "animated.gif": lambda f: im.quantize(16).save(f, "GIF", save_all=True, append_images=[second.convert("RGB").quantize(16)]),
        "palette8.bmp": lambda f: im.quantize(100).save(f, "BMP"),
        "1bit.bmp": lambda f: im.convert("1").save(f, "BMP"),
        "rgba.bmp": lambda f: rgba.save(f, "BMP"),
        "555.bmp": lambda f: f.write(bmp16(11, 5, None)),
        "565.bmp": lambda f: f.write(bmp16(11, 5, (0xF800, 0x07E0, 0x001F))),
        "lzw.tif": lambda f: im.save(f, "TIFF", compression="tiff_lzw"),
        "deflate.tif": lambda f: im.save(f, "TIFF", compression="tiff_adobe_deflate"),
        "packbits.tif": lambda f: im.save(f, "TIFF", compression="packbits"),
        "cmyk.tif": lambda f: im.convert("CMYK").save(f, "TIFF"),
        "grey16.tif": lambda f: Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 3).save(f, "TIFF"),
        "orientation-6.tif": lambda f: im.save(f, "TIFF", tiffinfo=orient),
        "1bit.tif": lambda f: im.convert("1").save(f, "TIFF"),
        "rgba.tif": lambda f: rgba.save(f, "TIFF"),
    }
    lines = []
    for name, write in sorted(files.items()):
        path = os.path.join(HERE, name)
        with open(path, "wb") as f:
            write(f)
        pixels = np.asarray(Image.open(path).convert("RGB"))
        digest = hashlib.sha256(pixels.tobytes()).hexdigest()
        lines.append(f"{name}\t{pixels.shape[1]}x{pixels.shape[0]}\t{digest}\n")
    with open(os.path.join(HERE, "expected.tsv"), "w") as f:
        f.write("# file\twidth x height\tsha256 of Pillow 13.0.0 Image.open(f).convert('RGB') pixels\n")
        f.writelines(lines)


if __name__ == "__main__":
    main()
