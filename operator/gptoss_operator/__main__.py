"""``python -m gptoss_operator`` is the same as the ``gptoss-operator`` console script."""

from gptoss_operator.commands import main

raise SystemExit(main())
