"""The ``fire`` console script: python-fire ships none, so ``fire recipes/full.py run`` works after install."""
from __future__ import annotations

import sys


def main() -> None:
    from fire.__main__ import main as fire_main

    sys.exit(fire_main(sys.argv))


if __name__ == "__main__":
    main()
