using System.Globalization;
using System.Security.Cryptography;

namespace CrmEngine.Core.Storage;

/// <summary>
/// Version-7 UUIDs (RFC 9562) as 32 lowercase hex digits, strictly increasing within this process:
/// 48-bit Unix milliseconds, then a 12-bit counter for ids made in the same millisecond (method 1
/// of the RFC), then random bits. <see cref="Guid.CreateVersion7()"/> alone is random within a
/// millisecond, so a batch of records would not list in creation order.
/// </summary>
internal static class SortableId
{
    private static readonly object Gate = new();
    private static long _lastMs;
    private static int _counter;

    public static string Next()
    {
        long ms;
        int counter;
        lock (Gate)
        {
            ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            if (ms <= _lastMs)
            {
                ms = _lastMs;
                if (++_counter > 0xFFF)
                {
                    ms = ++_lastMs;
                    _counter = 0;
                }
            }
            else
            {
                _lastMs = ms;
                _counter = 0;
            }

            counter = _counter;
        }

        Span<byte> random = stackalloc byte[8];
        RandomNumberGenerator.Fill(random);
        var tail = BitConverter.ToUInt64(random) & 0x3FFF_FFFF_FFFF_FFFFUL | 0x8000_0000_0000_0000UL; // variant 10
        return string.Create(CultureInfo.InvariantCulture, $"{ms & 0xFFFF_FFFF_FFFF:x12}7{counter:x3}{tail:x16}");
    }
}
