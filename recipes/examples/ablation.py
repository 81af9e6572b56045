"""Does a recipe pay for itself on your data? Train the same model under several recipe sets.

    python recipes/examples/ablation.py --dataset digits --train-fraction 0.1 --epochs 20

The table (Markdown), CSVs and a validation-curve plot land in the --out folder; the same
as `zoo compare MODEL --recipes none,augment,dropout,...`.
"""

import argparse

from recipes.compare import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5_modern")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--recipes", default="none,augment,dropout,batchnorm,augment+dropout",
                        help="sets separated by ',', recipes in a set joined by '+'")
    parser.add_argument("--train-fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="saved_models/compare/example")
    args = parser.parse_args()

    result = compare(args.model, args.recipes, dataset=args.dataset,
                     train_fraction=args.train_fraction, epochs=args.epochs, seeds=args.seeds,
                     out=args.out, progress=print)
    print(result.table)


if __name__ == "__main__":
    main()
