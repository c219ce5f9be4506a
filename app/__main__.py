from sitetwin.app.cli import main

main()
