"""``python -m gptoss_operator`` is the same as the ``gptoss-operator`` console script."""

from gptoss_operator.cli import main

raise SystemExit(main())
