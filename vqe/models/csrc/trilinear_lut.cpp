// Fused trilinear 3-D LUT lookup for eager CPU inference (built and loaded by
// vqe.models.lut_kernel; registered as the operator torch.ops.vqe.trilinear_lut).
//
// One pass over the frames: per pixel, clamp (r, g, b) to [0, 1], find the lattice cell in the
// frame's own LUT and interpolate its 8 corners (7 lerps, each on all three output channels at
// once), writing straight into the layout the next stage wants (NCHW or channels-last). It is
// the function of the 5-D grid_sample in vqe.models.lut.trilinear_lookup (align_corners=True,
// border padding) and of the atlas lookup in vqe.models.deploy, to float rounding.
//
// LUT layout (vqe.models.lut): lut[n, c, b, g, r], red on the last axis; lattice index i stands
// for the input value i / (D - 1).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace {

// Four floats in one SIMD register (GCC/Clang vector extension: SSE on x86, NEON on ARM).
typedef float Float4 __attribute__((vector_size(16)));

inline Float4 load4(const float* source) {
    Float4 value;
    std::memcpy(&value, source, sizeof(value));
    return value;
}

inline Float4 lerp4(Float4 low, Float4 high, float fraction) {
    return low + fraction * (high - low);
}

// Pixels per chunk: a chunk's cells and fractions are found in one vectorised pass, its corners
// interpolated in a second, and its results stored in the output layout in a third.
constexpr int64_t kChunk = 64;
// The table holds each lattice point as [r, g, b, pad]: 4 floats to the next point along red.
constexpr int32_t kStepRed = 4;

// One row of pixels; the layouts are compile-time so that the first and last passes vectorise
// (NCHW: three planes, ``in_c`` / ``out_c`` apart; NHWC: three floats per pixel).
template <bool kPlanarIn, bool kPlanarOut>
void lookup_row(const float* in, int64_t in_c, float* out, int64_t out_c, const float* table,
                int64_t width, int32_t size) {
    const float scale = static_cast<float>(size - 1);
    const int32_t last_cell = size - 2;
    const int32_t step_green = kStepRed * size, step_blue = step_green * size;
    alignas(64) int32_t offset[kChunk];
    alignas(64) float fraction_red[kChunk], fraction_green[kChunk], fraction_blue[kChunk];
    alignas(64) float staged[4 * kChunk];
    for (int64_t start = 0; start < width; start += kChunk) {
        const int64_t count = std::min(kChunk, width - start);
        const float* pixels = in + (kPlanarIn ? start : 3 * start);
#pragma omp simd
        for (int64_t i = 0; i < count; ++i) {
            const float r = kPlanarIn ? pixels[i] : pixels[3 * i];
            const float g = kPlanarIn ? pixels[in_c + i] : pixels[3 * i + 1];
            const float b = kPlanarIn ? pixels[2 * in_c + i] : pixels[3 * i + 2];
            // Clamped to [0, 1] (NaN counts as 0) and scaled to the lattice; the cell index is
            // at most D - 2, so that 1.0 lies at the far end of the last cell.
            const float pr = (r > 0.0f ? (r < 1.0f ? r : 1.0f) : 0.0f) * scale;
            const float pg = (g > 0.0f ? (g < 1.0f ? g : 1.0f) : 0.0f) * scale;
            const float pb = (b > 0.0f ? (b < 1.0f ? b : 1.0f) : 0.0f) * scale;
            const int32_t cell_r = std::min(static_cast<int32_t>(pr), last_cell);
            const int32_t cell_g = std::min(static_cast<int32_t>(pg), last_cell);
            const int32_t cell_b = std::min(static_cast<int32_t>(pb), last_cell);
            fraction_red[i] = pr - static_cast<float>(cell_r);
            fraction_green[i] = pg - static_cast<float>(cell_g);
            fraction_blue[i] = pb - static_cast<float>(cell_b);
            offset[i] = cell_b * step_blue + cell_g * step_green + cell_r * kStepRed;
        }
        for (int64_t i = 0; i < count; ++i) {
            // The cell's four edges along red, each two adjacent lattice points.
            const float* near = table + offset[i];
            const float* up = near + step_green;
            const float* back = near + step_blue;
            const float* far = back + step_green;
            const float x = fraction_red[i], y = fraction_green[i], z = fraction_blue[i];
            const Float4 near_edge = lerp4(load4(near), load4(near + kStepRed), x);
            const Float4 up_edge = lerp4(load4(up), load4(up + kStepRed), x);
            const Float4 back_edge = lerp4(load4(back), load4(back + kStepRed), x);
            const Float4 far_edge = lerp4(load4(far), load4(far + kStepRed), x);
            const Float4 value =
                lerp4(lerp4(near_edge, up_edge, y), lerp4(back_edge, far_edge, y), z);
            std::memcpy(staged + 4 * i, &value, sizeof(value));
        }
        float* target = out + (kPlanarOut ? start : 3 * start);
#pragma omp simd
        for (int64_t i = 0; i < count; ++i) {
            (kPlanarOut ? target[i] : target[3 * i]) = staged[4 * i];
            (kPlanarOut ? target[out_c + i] : target[3 * i + 1]) = staged[4 * i + 1];
            (kPlanarOut ? target[2 * out_c + i] : target[3 * i + 2]) = staged[4 * i + 2];
        }
    }
}

at::Tensor trilinear_lut(const at::Tensor& frames, const at::Tensor& luts, bool channels_last) {
    TORCH_CHECK(frames.dim() == 4 && frames.size(1) == 3,
                "vqe::trilinear_lut: frames must be B×3×H×W, got ", frames.sizes());
    TORCH_CHECK(luts.dim() == 5 && luts.size(0) == frames.size(0) && luts.size(1) == 3 &&
                    luts.size(2) == luts.size(3) && luts.size(3) == luts.size(4) &&
                    luts.size(2) >= 2,
                "vqe::trilinear_lut: luts must be B×3×D×D×D (D ≥ 2) for frames ", frames.sizes(),
                ", got ", luts.sizes());
    TORCH_CHECK(frames.scalar_type() == at::kFloat && luts.scalar_type() == at::kFloat,
                "vqe::trilinear_lut: float32 frames and luts only");
    TORCH_CHECK(frames.device().is_cpu() && luts.device().is_cpu(),
                "vqe::trilinear_lut: CPU tensors only");

    // Frames are read in the layout they come in, NCHW or channels-last (any other is copied
    // to NCHW first).
    const bool planar_in = frames.is_contiguous() ||
                           !frames.is_contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor input = planar_in ? frames.contiguous() : frames;
    const int64_t batch = input.size(0), height = input.size(2), width = input.size(3);
    const int64_t plane = height * width;
    // Each LUT as a table of lattice points [b][g][r][r, g, b, pad].
    const at::Tensor table =
        at::constant_pad_nd(luts.permute({0, 2, 3, 4, 1}), {0, 1}).contiguous();
    const auto layout =
        channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    at::Tensor output = at::empty(input.sizes(), input.options().memory_format(layout));

    const float* input_data = input.data_ptr<float>();
    const float* table_data = table.data_ptr<float>();
    float* output_data = output.data_ptr<float>();
    const int64_t table_stride = table.stride(0);
    const int32_t size = static_cast<int32_t>(luts.size(2));
    // A row is the unit of work; ~16k pixels per task keep the threads' overhead negligible.
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(width, 1));
    at::parallel_for(0, batch * height, grain, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
            const int64_t n = row / height, y = row % height;
            // Both layouts keep a row's pixels together: W floats per plane, or 3·W in NHWC.
            const float* in = input_data + n * 3 * plane + y * width * (planar_in ? 1 : 3);
            float* out = output_data + n * 3 * plane + y * width * (channels_last ? 3 : 1);
            const float* lut = table_data + n * table_stride;
            if (planar_in && !channels_last) {
                lookup_row<true, true>(in, plane, out, plane, lut, width, size);
            } else if (planar_in) {
                lookup_row<true, false>(in, plane, out, plane, lut, width, size);
            } else if (!channels_last) {
                lookup_row<false, true>(in, plane, out, plane, lut, width, size);
            } else {
                lookup_row<false, false>(in, plane, out, plane, lut, width, size);
            }
        }
    });
    return output;
}

}  // namespace

TORCH_LIBRARY(vqe, m) {
    m.def("trilinear_lut(Tensor frames, Tensor luts, bool channels_last) -> Tensor");
}

TORCH_LIBRARY_IMPL(vqe, CPU, m) {
    m.impl("trilinear_lut", trilinear_lut);
}
