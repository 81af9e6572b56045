"""Train a zoo model with recipes from Python: the same names as `zoo train --recipe`.

    python recipes/examples/train_with_recipes.py --model lenet5_modern \
        --recipe augment:rotation=0.05 --recipe dropout:rate=0.3 --recipe batchnorm --epochs 5
"""

import argparse

from recipes import apply_recipes
from recipes.batch_size import auto_batch_size
from zoo.training.train import TrainPlan, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5_modern")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--recipe", action="append", default=[],
                        help="NAME[:key=value,...]; repeatable (see `zoo recipes`)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--auto-batch", action="store_true",
                        help="largest power-of-two batch that fits in memory")
    args = parser.parse_args()

    plan = TrainPlan(model=args.model, dataset=args.dataset, epochs=args.epochs,
                     learning_rate=args.lr)
    # Each recipe edits one concern of the plan; the order they are listed in does not matter.
    plan = apply_recipes(plan, args.recipe)
    if args.auto_batch:
        plan.batch_size = auto_batch_size(plan)
    result = train(plan)
    print(f"recipes {plan.recipes}, batch {plan.batch_size}: {result.test_metrics}")
    print(f"run directory: {result.run_dir}")


if __name__ == "__main__":
    main()
