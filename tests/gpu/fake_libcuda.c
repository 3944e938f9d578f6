/* A fake NVIDIA driver library (libcuda.so) for envassay's tests: no GPU needed.
 *
 * It exports the driver API entry points the GPU probe calls, with answers set by
 * environment variables read at call time:
 *
 *   FAKE_CUDA_DRIVER_VERSION  cuDriverGetVersion's answer (default 12040: CUDA 12.4)
 *   FAKE_CUDA_DEVICE_COUNT    cuDeviceGetCount's answer (default 2, at most 2)
 *   FAKE_CUDA_INIT_ERROR      cuInit returns this CUresult (default 0; 100 is
 *                             CUDA_ERROR_NO_DEVICE)
 *   FAKE_CUDA_HANG            cuInit never returns (a hung driver)
 *
 * Device 0 is "Fake H100 80GB" (compute capability 9.0, 80 GiB); device 1 is
 * "Fake A10" (8.6, 24 GiB). Build: gcc -shared -fPIC -o libcuda.so.1 fake_libcuda.c
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef int CUresult;
typedef int CUdevice;

enum {
    SUCCESS = 0,
    INVALID_VALUE = 1,
    NOT_INITIALIZED = 3,
    INVALID_DEVICE = 101,
};

static const struct {
    const char *name;
    int major, minor;
    size_t memory;
} devices[] = {
    {"Fake H100 80GB", 9, 0, (size_t)80 << 30},
    {"Fake A10", 8, 6, (size_t)24 << 30},
};

static int initialized;

static int env_int(const char *name, int fallback) {
    const char *value = getenv(name);
    return value && *value ? atoi(value) : fallback;
}

static int device_count(void) {
    int count = env_int("FAKE_CUDA_DEVICE_COUNT", 2);
    return count < 0 ? 0 : count > 2 ? 2 : count;
}

CUresult cuInit(unsigned int flags) {
    (void)flags;
    if (env_int("FAKE_CUDA_HANG", 0)) {
        for (;;) pause();
    }
    int error = env_int("FAKE_CUDA_INIT_ERROR", 0);
    if (error) return error;
    initialized = 1;
    return SUCCESS;
}

CUresult cuDriverGetVersion(int *version) {
    if (!version) return INVALID_VALUE;
    *version = env_int("FAKE_CUDA_DRIVER_VERSION", 12040);
    return SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
    if (!initialized) return NOT_INITIALIZED;
    if (!count) return INVALID_VALUE;
    *count = device_count();
    return SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
    if (!initialized) return NOT_INITIALIZED;
    if (!device) return INVALID_VALUE;
    if (ordinal < 0 || ordinal >= device_count()) return INVALID_DEVICE;
    *device = ordinal;
    return SUCCESS;
}

CUresult cuDeviceGetName(char *name, int length, CUdevice device) {
    if (!initialized) return NOT_INITIALIZED;
    if (device < 0 || device >= device_count()) return INVALID_DEVICE;
    if (!name || length <= 0) return INVALID_VALUE;
    snprintf(name, (size_t)length, "%s", devices[device].name);
    return SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice device) {
    if (!initialized) return NOT_INITIALIZED;
    if (device < 0 || device >= device_count()) return INVALID_DEVICE;
    if (!bytes) return INVALID_VALUE;
    *bytes = devices[device].memory;
    return SUCCESS;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, CUdevice device) {
    if (!initialized) return NOT_INITIALIZED;
    if (device < 0 || device >= device_count()) return INVALID_DEVICE;
    if (!value) return INVALID_VALUE;
    if (attribute == 75) { /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
        *value = devices[device].major;
    } else if (attribute == 76) { /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR */
        *value = devices[device].minor;
    } else {
        return INVALID_VALUE;
    }
    return SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char **text) {
    if (!text) return INVALID_VALUE;
    switch (error) {
    case SUCCESS: *text = "CUDA_SUCCESS"; return SUCCESS;
    case INVALID_VALUE: *text = "CUDA_ERROR_INVALID_VALUE"; return SUCCESS;
    case NOT_INITIALIZED: *text = "CUDA_ERROR_NOT_INITIALIZED"; return SUCCESS;
    case 35: *text = "CUDA_ERROR_INSUFFICIENT_DRIVER"; return SUCCESS;
    case 100: *text = "CUDA_ERROR_NO_DEVICE"; return SUCCESS;
    case INVALID_DEVICE: *text = "CUDA_ERROR_INVALID_DEVICE"; return SUCCESS;
    default: *text = NULL; return INVALID_VALUE;
    }
}
