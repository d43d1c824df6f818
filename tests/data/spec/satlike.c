/* A stand-in for a third-party solver: reads the input file named by its first argument,
 * writes a model into the directory named by its second (if given), reports its answer on
 * stdout and through its exit status, as SAT solvers do (10: satisfiable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: satlike INPUT [OUTDIR]\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 3;
    }
    long lines = 0;
    int c;
    while ((c = fgetc(in)) != EOF)
        if (c == '\n')
            lines++;
    fclose(in);
    if (argc > 2) {
        char path[4096];
        snprintf(path, sizeof path, "%s/model.txt", argv[2]);
        FILE *out = fopen(path, "w");
        if (!out) {
            perror(path);
            return 4;
        }
        fprintf(out, "v 1 -2 0\n");
        fclose(out);
    }
    const char *mode = getenv("SATLIKE_MODE");
    char answer[64] = "";
    if (fgets(answer, sizeof answer, stdin) == NULL)
        strcpy(answer, "none\n");
    printf("c %ld lines, mode %s, stdin %s", lines, mode ? mode : "unset", answer);
    printf("s SATISFIABLE\n");
    return 10;
}
