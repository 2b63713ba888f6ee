print("hello, I am not a port", flush=True)
import time

time.sleep(3600)
