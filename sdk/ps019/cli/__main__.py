from ps019.cli import main

main()
