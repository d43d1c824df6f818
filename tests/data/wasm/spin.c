/* spin: never returns (a runaway guest for the time-limit guard rail). */
int main(void) {
    volatile unsigned long n = 0;
    for (;;) {
        n++;
    }
}
