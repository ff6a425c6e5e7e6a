/* tools/sparrow/main.c — placeholder CLI entry until the commands land. */
#include <stdio.h>

#include "sparrow/sparrow.h"

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("sparrow %d.%d.%d\n", SPARROW_VERSION_MAJOR, SPARROW_VERSION_MINOR, SPARROW_VERSION_PATCH);
  return 0;
}
