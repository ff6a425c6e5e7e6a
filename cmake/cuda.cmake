# cmake/cuda.cmake — the CUDA validation backend (-DSPR_CUDA=ON, docs/cuda.md).
#
# Included from the top-level CMakeLists.txt only when SPR_CUDA is ON, so a
# default build never looks for a CUDA toolkit. The backend is a separate
# static library (sparrow_cuda) over the C library; it links the CUDA runtime
# (CUDA::cudart) and never libcuda directly, so it builds and links on a
# machine without a GPU or a driver (its tests then exit 77 = skipped).

# nvcc is usually not on PATH: fall back to the toolkit's default location.
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  find_program(SPR_NVCC nvcc)
  if(SPR_NVCC)
    set(CMAKE_CUDA_COMPILER ${SPR_NVCC})
  elseif(EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  else()
    message(FATAL_ERROR "SPR_CUDA=ON but nvcc was not found: put it on PATH or pass -DCMAKE_CUDA_COMPILER=...")
  endif()
endif()

# An explicit list: "native" fails where there is no GPU (CI). sm_75 (Turing)
# is the oldest architecture CUDA 13 supports; 90 = Hopper.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "75;80;86;89;90")
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)

file(GLOB SPR_CUDA_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/ops/backends/cuda/*.cu
  ${PROJECT_SOURCE_DIR}/ops/backends/cuda/*.c)
add_library(sparrow_cuda STATIC ${SPR_CUDA_SOURCES})
add_library(sparrow::cuda ALIAS sparrow_cuda)
target_include_directories(sparrow_cuda PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(sparrow_cuda PUBLIC sparrow CUDA::cudart)
target_compile_definitions(sparrow_cuda PUBLIC SPR_CUDA=1)
# --fmad=false: no multiply-add contraction on the device, so each kernel's
# arithmetic is the sequence written in the source (as the CPU oracles);
# validation differences then come from summation order and libm only.
target_compile_options(sparrow_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>
  $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${SPR_WERROR}>>:-Werror=all-warnings>
  $<$<COMPILE_LANGUAGE:C>:${SPR_WARN}>)
message(STATUS "sparrow: CUDA backend with ${CMAKE_CUDA_COMPILER} (${CMAKE_CUDA_COMPILER_VERSION}), "
               "architectures ${CMAKE_CUDA_ARCHITECTURES}")
