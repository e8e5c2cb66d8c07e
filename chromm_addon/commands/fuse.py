"""`fuse VIEWS.npz -o TAKE.npz [--smplx FILE] [--config FILE] [--no-smooth] [--sync auto|motion|none]
[...]`: the test-time modules on a views file. Every option of `options.FuseOptions` has a flag
(`--help` lists them). Motion sync (`--sync auto` or `motion`, the default) finds and undoes
per-view time offsets first (docs/sync.md)."""


def add_arguments(parser):
    from ..options import FuseOptions, add_arguments as add_option_arguments

    parser.add_argument("views", help="views file (.npz, chromm.views v1)")
    parser.add_argument("-o", "--output", required=True, help="the take file to write (.npz)")
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz for the rest joints "
                        "(default: $CHROMM_SMPLX_MODEL; without one an approximate skeleton)")
    add_option_arguments(parser, FuseOptions)


def run(args):
    from ..body.model_file import configured_model
    from ..fusion.pipeline import fuse_views
    from ..io.take import write_take
    from ..io.views import read_views
    from ..options import FuseOptions, from_args

    options = from_args(FuseOptions, args)
    views = read_views(args.views)
    model = configured_model(args.smplx)
    take = fuse_views(views, model, options, path=args.views)
    write_take(args.output, take)
    sync = take.meta.get("sync", {})
    if sync.get("method") == "motion":
        shifts = ", ".join(f"{name} {off:+.4f} s ({conf:.2f})" for name, off, conf in
                           zip(take.view_names, sync["offsets_s"], sync["confidence"]))
        print(f"motion sync (offset, confidence){'' if sync.get('applied') else ', not applied'}: {shifts}")
        for note in sync.get("notes", ()):
            print(f"note: {note}")
    seen = take.valid.sum(1)
    print(f"{args.output}: {take.num_people} people over {take.num_frames} timesteps "
          f"({', '.join(str(int(n)) for n in seen)} seen), {take.num_views} views, "
          f"scene scale x{take.meta['source']['scale']:.3f}, up from {take.meta['source']['up']}, "
          f"rest joints from {'the model file' if model else 'the approximate skeleton'}")
    return 0
