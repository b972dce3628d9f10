# CudaStore: include()d by backends/vram/CMakeLists.txt once tierswap_vram
# exists. Needs TIERSWAP_HAVE_CUDA (top level: nvcc found, CUDA enabled,
# CUDAToolkit found, CMAKE_CUDA_ARCHITECTURES 90 unless set).
#
# The CUDA runtime is linked statically: it loads libcuda.so.1 at run time,
# so tierswap-nbd starts on a machine with no NVIDIA libraries and
# make_cuda_store() says "no NVIDIA driver" instead of the loader failing.
if(NOT TIERSWAP_HAVE_CUDA)
  return()
endif()

target_sources(tierswap_vram PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/cuda_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_kernels.cu)
target_compile_definitions(tierswap_vram PUBLIC TIERSWAP_HAVE_CUDA_STORE)
target_link_libraries(tierswap_vram PUBLIC CUDA::cudart_static)
# nvcc 13 takes at most C++20; the .cu files and cuda_kernels.hpp are C++17.
set_target_properties(tierswap_vram PROPERTIES
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_RUNTIME_LIBRARY Static)
target_compile_options(tierswap_vram PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo -Xptxas=-warn-spills>)

# The store-level microbenchmark lives with the other benchmarks' sources.
add_subdirectory(${PROJECT_SOURCE_DIR}/bench/gpu ${PROJECT_BINARY_DIR}/bench/gpu)
