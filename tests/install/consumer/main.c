/* Uses only the installed public headers: load a model when given one. */
#include <stdio.h>
#include <stdlib.h>

#include <sparrow/sparrow.h>

int main(int argc, char **argv) {
  printf("sparrow %d.%d.%d, status 300 is %s\n", SPARROW_VERSION_MAJOR, SPARROW_VERSION_MINOR,
         SPARROW_VERSION_PATCH, spr_status_name(SPR_STATUS_ARENA_TOO_SMALL));
  if (argc < 2) return 0;
  struct spr_model *m = NULL;
  struct spr_error err;
  if (spr_model_load_file(argv[1], NULL, &m, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "load failed: %s\n", err.msg);
    return 1;
  }
  struct spr_plan plan;
  if (spr_plan(m, NULL, &plan, &err) != SPR_STATUS_OK) return 1;
  printf("%s needs an arena of %zu bytes\n", spr_model_arch(m), plan.arena_bytes);
  spr_model_free(m);
  return 0;
}
