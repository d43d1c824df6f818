/* noop: the smallest workload, used for startup measurements.
 *
 * Usage: noop
 * Prints "VB-RESULT workload=noop" and exits 0.
 */
#include <stdio.h>

int main(void) {
    fputs("VB-RESULT workload=noop\n", stdout);
    return 0;
}
