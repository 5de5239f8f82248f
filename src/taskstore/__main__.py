from taskstore.server.cli import main

raise SystemExit(main())
