"""`caffeconf convert-imageset ROOT LIST DB`: an LMDB of Caffe Datum records from an image list,
like Caffe's convert_imageset (keys `%08d_<filename>`, the database built atomically)."""

from __future__ import annotations

from .net_options import seed


def add_arguments(parser) -> None:
    parser.add_argument("root", metavar="ROOT", help="folder the list's file names are relative to (with '/')")
    parser.add_argument("list", metavar="LIST", help="lines of 'filename label'")
    parser.add_argument("db", metavar="DB", help="the LMDB folder to create (must not exist)")
    parser.add_argument("--gray", action="store_true", help="read the images as grayscale")
    parser.add_argument("--shuffle", action="store_true", help="shuffle the lines first")
    parser.add_argument("--seed", type=seed, default=0, help="seed of --shuffle")
    parser.add_argument("--resize_height", "--resize-height", type=int, default=0, metavar="H",
                        help="resize every image to this height (default 0: keep)")
    parser.add_argument("--resize_width", "--resize-width", type=int, default=0, metavar="W",
                        help="resize every image to this width (default 0: keep)")
    parser.add_argument("--encoded", action="store_true", help="store encoded images (PNG/JPEG bytes)")
    parser.add_argument("--encode_type", "--encode-type", default="", metavar="EXT",
                        help="re-encode as this type with --encoded (default: each file's own)")
    parser.add_argument("--backend", choices=("lmdb",), default="lmdb", help="only lmdb")


def run(args) -> int:
    import sys

    import numpy as np

    from ..errors import CaffeconfError
    from ..train.imageset import image_records, read_list, write_lmdb

    if bool(args.resize_height) != bool(args.resize_width):
        raise CaffeconfError.at(None, "give both --resize_height and --resize_width, or neither")
    entries = read_list(args.list)
    if args.shuffle:
        order = np.random.default_rng(args.seed).permutation(len(entries))
        entries = [entries[i] for i in order]
    skipped: list[str] = []
    try:
        count = write_lmdb(args.db, image_records(args.root, entries, gray=args.gray, height=args.resize_height,
                                                  width=args.resize_width, encoded=args.encoded,
                                                  encode_type=args.encode_type, skipped=skipped))
    finally:  # the reasons, also when no image could be read and nothing was created
        for reason in skipped:
            print(f"warning: {reason}: skipped", file=sys.stderr)
    print(f"Processed {count} files into {args.db}")
    return 0
