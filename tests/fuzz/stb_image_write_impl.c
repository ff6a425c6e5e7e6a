/* tests/fuzz/stb_image_write_impl.c — Debian's stb_image_write, used as
 * installed (no warning flags), for the seed generator's PNG/JPEG files. */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
