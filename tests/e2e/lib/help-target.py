#!/usr/bin/python3
"""The student's application in the remote-help tests and benchmark: an ordinary X program
(Tk, from Debian's python3-tk) covering the screen. The left half is one big button whose
colour flips at each click; the right half is a text field. It prints what happens to it on
stdout, one line each: "ready", "click <n>", "text <value>".

    /usr/bin/python3 help-target.py WIDTHxHEIGHT
"""
import sys
import tkinter as tk

RED = "#c83232"
GREEN = "#32a852"

width, height = (int(v) for v in sys.argv[1].split("x"))
root = tk.Tk()
root.geometry(f"{width}x{height}+0+0")
root.configure(background="#202020")
clicks = 0


def say(line):
    print(line, flush=True)


def clicked():
    global clicks
    clicks += 1
    colour = GREEN if clicks % 2 else RED
    button.configure(background=colour, activebackground=colour)
    say(f"click {clicks}")


button = tk.Button(root, text="Cliquez-moi", command=clicked, background=RED,
                   activebackground=RED, foreground="white", font=("DejaVu Sans", 32),
                   relief="flat", borderwidth=0, highlightthickness=0)
button.place(x=0, y=0, width=width // 2, height=height)
entry = tk.Entry(root, font=("DejaVu Sans", 28))
entry.place(x=width // 2 + 40, y=height // 2 - 30, width=width // 2 - 80, height=60)
entry.bind("<KeyRelease>", lambda _e: say(f"text {entry.get()}"))
root.after(200, lambda: say("ready"))
root.mainloop()
