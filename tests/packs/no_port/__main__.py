import time

time.sleep(3600)  # never serves, never prints a port
