from envassay.cli import main

raise SystemExit(main())
