#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A TCP server on 127.0.0.1 that accepts every connection and never answers: what a hung debuginfod
# server looks like to a client.  The offline tests point DEBUGINFOD_URLS at it to prove a tool never
# reaches the network (no connection) and is bounded in time (a lookup would block).
# Usage: silent_server.py DIR: writes DIR/port once listening, and DIR/connections (the number accepted)
# after each connection; both are written whole (renamed into place), so a reader never sees half a number.
import os
import socket
import sys


def write(directory, name, value):
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(str(value))
    os.rename(tmp, os.path.join(directory, name))


def main():
    directory = sys.argv[1]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    held = []
    write(directory, "port", s.getsockname()[1])
    while True:
        c, _ = s.accept()
        held.append(c)  # accepted, never answered
        write(directory, "connections", len(held))


main()
