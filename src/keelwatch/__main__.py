from keelwatch.cli import main

main()
