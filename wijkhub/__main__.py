from wijkhub.cli import main

main()
