using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace CrmEngine.Edi;

/// <summary>
/// Streaming segment tokenizer for X12 and EDIFACT. Detects the delimiters of each interchange
/// (ISA fixed positions, UNA service string advice, or the UNB syntax defaults), honours the
/// EDIFACT release character, drops CR/LF after terminators and inside lines wrapped at a fixed width,
/// and reads several interchanges from one stream. Memory is bounded by
/// <see cref="EdiReaderOptions.MaxSegmentLength"/>: the current segment is the only thing held.
/// </summary>
public sealed class EdiTokenizer : IDisposable
{
    private const byte Cr = (byte)'\r';
    private const byte Lf = (byte)'\n';

    private readonly Stream _source;
    private Stream _stream;
    private Stream? _transcoder;
    private readonly EdiReaderOptions _options;
    private readonly bool _ownsStream;
    private byte[] _buf;
    private int _pos;
    private int _end;
    private long _bufBase;
    private bool _eof;
    private int _line = 1;
    private long _lineStart;
    private bool _needDetect = true;
    private bool _sawInterchange;
    private SearchValues<byte> _stops = SearchValues.Create("~"u8);
    private byte[] _scratch = [];
    private byte[] _segArr = [];
    private int _segOff;
    private int _segLen;
    private int[] _bounds = new int[64];
    private int _elemCount;
    private readonly int _maxElements;
    private const int TagIea = ('I' << 16) | ('E' << 8) | 'A';
    private const int TagUnz = ('U' << 16) | ('N' << 8) | 'Z';
    private const int TagUnb = ('U' << 16) | ('N' << 8) | 'B';

    public EdiTokenizer(Stream stream, EdiReaderOptions? options = null, bool ownsStream = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _source = stream;
        _ownsStream = ownsStream;
        _options = options ?? EdiReaderOptions.Default;
        _buf = ArrayPool<byte>.Shared.Rent(Math.Max(1024, _options.BufferSize));
        _maxElements = Math.Min(_options.MaxElementsPerSegment, 1 << 20);
    }

    public EdiReaderOptions Options => _options;

    /// <summary>Test hook: every segment through the exact (slow) path, to compare it with the vector pass on the same input.</summary>
    internal bool ExactPathOnly { get; init; }

    public EdiStandard Standard { get; private set; }

    public EdiDelimiters Delimiters
    {
        get => _delims;
        private set
        {
            // The vector pass compares against these; set once per interchange, not per segment.
            _delims = value;
            _vTerm = Vector256.Create(value.Segment);
            _vRel = Vector256.Create(value.Release != 0 ? value.Release : value.Segment);
            _vSep = Vector256.Create(value.Element);
            _vComp = Vector256.Create(value.Component);
            _vRep = Vector256.Create(value.Repetition != 0 ? value.Repetition : value.Component);
        }
    }

    private EdiDelimiters _delims;
    private Vector256<byte> _vTerm;
    private Vector256<byte> _vRel;
    private Vector256<byte> _vSep;
    private Vector256<byte> _vComp;
    private Vector256<byte> _vRep;
    private int _tag;

    /// <summary>The current segment's tag packed as <see cref="EdiTag.Pack(ReadOnlySpan{byte})"/> does (0 empty, -1 longer than 3).</summary>
    internal int PackedTag => _tag;

    /// <summary>
    /// Set when the input is two-octet UCS-2 (UNOW/UNOY interchanges sent as ISO 10646 UCS-2, big-endian, or
    /// little-endian with a byte order mark): it is transcoded to UTF-8 before tokenizing, so offsets then count UTF-8 bytes.
    /// </summary>
    public string? InputTranscodedFrom { get; private set; }

    /// <summary>True when the current EDIFACT interchange started with a UNA service string advice.</summary>
    public bool HasServiceStringAdvice { get; private set; }

    /// <summary>True when the last segment read was the first of a newly detected interchange.</summary>
    public bool IsNewInterchange { get; private set; }

    /// <summary>Absolute byte offset of the current segment's first byte.</summary>
    public long SegmentOffset { get; private set; }

    public int SegmentLine { get; private set; }

    public int SegmentColumn { get; private set; }

    /// <summary>Number of segments read so far (1 after the first).</summary>
    public long SegmentCount { get; private set; }

    /// <summary>Absolute offset of the next unread byte.</summary>
    public long Position => _bufBase + _pos;

    /// <summary>Elements in the current segment, the tag counting as element 0.</summary>
    public int ElementCount => _elemCount;

    /// <summary>Raw bytes of the current segment (without terminator, CR/LF removed, release characters kept).</summary>
    public ReadOnlySpan<byte> SegmentBytes => new(_segArr, _segOff, _segLen);

    /// <summary>Element start offsets into <see cref="SegmentBytes"/>; entry <c>ElementCount</c> is <c>length + 1</c>.</summary>
    public ReadOnlySpan<int> ElementBounds => new(_bounds, 0, _elemCount + 1);

    public ReadOnlySpan<byte> Tag => Element(0);

    /// <summary>The current segment's storage for a bulk copy: its bytes are src[offset..offset+length), its bounds bounds[0..count).</summary>
    internal void GetCurrent(out byte[] src, out int offset, out int length, out int[] bounds, out int count)
    {
        src = _segArr;
        offset = _segOff;
        length = _segLen;
        bounds = _bounds;
        count = _elemCount + 1;
    }

    /// <summary>Raw element <paramref name="index"/> (0 = tag), empty when absent.</summary>
    public ReadOnlySpan<byte> Element(int index)
    {
        if ((uint)index >= (uint)_elemCount)
        {
            return default;
        }

        int s = _bounds[index];
        return new ReadOnlySpan<byte>(_segArr, _segOff + s, _bounds[index + 1] - 1 - s);
    }

    /// <summary>Reads the next segment. Returns false at the end of input (after trailing blanks).</summary>
    public bool ReadSegment()
    {
        IsNewInterchange = false;
        _compMask = -1;
        if (_needDetect)
        {
            if (!Detect())
            {
                return false;
            }

            _needDetect = false;
            IsNewInterchange = true;
        }

        ref readonly var d = ref _delims;
        byte term = d.Segment;

        // Skip line breaks and padding between segments.
        while (true)
        {
            if (_pos == _end && !Fill())
            {
                return false;
            }

            byte b = _buf[_pos];
            if (b > (byte)' ' && b != term)
            {
                break; // the usual case: a segment starts here (none of the bytes skipped below is above the space)
            }

            if (b == term)
            {
                _pos++; // empty segment
                if (b == Lf)
                {
                    NewLine(_bufBase + _pos);
                }

                continue;
            }

            if (b == Lf)
            {
                _pos++;
                NewLine(_bufBase + _pos);
                continue;
            }

            if (b == Cr || b == 0 || b == 0x1A || ((b == (byte)' ' || b == (byte)'\t') && !d.IsSpecial(b)))
            {
                _pos++;
                continue;
            }

            break;
        }

        if (!IsNewInterchange && (_buf[_pos] == (byte)'I' || _buf[_pos] == (byte)'U') && MaybeHeader() && HeaderAhead(d))
        {
            // A new interchange header without the previous trailer: take its own delimiters.
            _needDetect = true;
            return ReadSegment();
        }

        SegmentOffset = _bufBase + _pos;
        SegmentLine = _line;
        SegmentColumn = (int)(SegmentOffset - _lineStart) + 1;
        if (!Vector256.IsHardwareAccelerated || ExactPathOnly || !TryReadPlainSegment256())
        {
            ReadSegmentSlow(d);
            _tag = EdiTag.Pack(Element(0));
        }

        SegmentCount++;
        int tag = _tag;
        if (IsNewInterchange && HasServiceStringAdvice && d.Repetition != 0 && tag == TagUnb && !SyntaxVersion4(Element(1)))
        {
            // UNA position 5 is the repetition separator only from syntax version 4 (reserved before).
            Delimiters = d with { Repetition = 0 };
        }

        if (tag == TagIea || tag == TagUnz)
        {
            _needDetect = true;
        }

        return true;
    }

    /// <summary>
    /// <see cref="ReadSegment"/> for the reader's loop inside a transaction set: a segment that starts right here with a byte
    /// that begins no interchange header or trailer (not I or U) and is cut by the vector pass needs none of the checks
    /// around it; anything else goes through <see cref="ReadSegment"/>.
    /// </summary>
    internal bool ReadSegmentInSet()
    {
        int p = _pos;
        if (!_needDetect && p < _end && Vector256.IsHardwareAccelerated && !ExactPathOnly)
        {
            byte b = _buf[p];
            if (b > (byte)' ' && b != _delims.Segment && b != (byte)'I' && b != (byte)'U')
            {
                IsNewInterchange = false;
                long offset = _bufBase + p;
                SegmentOffset = offset;
                SegmentLine = _line;
                SegmentColumn = (int)(offset - _lineStart) + 1;
                if (TryReadPlainSegment256())
                {
                    SegmentCount++;
                    return true;
                }
            }
        }

        return ReadSegment();
    }

    /// <summary>
    /// The common case in one pass over the buffer, 32 bytes at a time (most segments end within the first block): finds
    /// the terminator and the element separators together and computes the segment flags. Element bounds are written
    /// straight into the bounds array. Gives up (false, nothing consumed) when a line break or release character comes
    /// before the terminator, fewer than 32 bytes are buffered or the element limit is near: <see cref="ReadSegmentSlow"/>
    /// handles those.
    /// </summary>
    private bool TryReadPlainSegment256()
    {
        int start = _pos;
        int last = _end - 32;
        if (start > last)
        {
            return false;
        }

        // No call inside the loop (a segment that needs a bigger bounds array goes the slow way once), so the vectors stay in registers.
        var vterm = _vTerm;
        var vrel = _vRel;
        var vsep = _vSep;
        var vcomp = _vComp;
        var vrep = _vRep;
        var v0a = Vector256.Create((byte)0x0A);
        var v03 = Vector256.Create((byte)0x03);
        var v20 = Vector256.Create((byte)0x20);
        var v5e = Vector256.Create((byte)0x5E);
        byte term = _delims.Segment;
        int room = Math.Min(_maxElements - 33, _bounds.Length - 34);
        ref byte r0 = ref MemoryMarshal.GetArrayDataReference(_buf);
        var bounds = _bounds;
        ref int b0 = ref MemoryMarshal.GetArrayDataReference(bounds);
        int count = 1;
        b0 = 0;
        uint special = 0;
        uint notPlain = 0;
        uint firstComps = 0;
        uint secondComps = 0;
        uint laterComps = 0;
        bool hasRelease = _delims.Release != 0;
        bool released = false;
        uint carry = 0;
        int i = start;
        while (true)
        {
            if (i > last)
            {
                return false;
            }

            var v = Vector256.LoadUnsafe(ref r0, (nuint)i);

            // Stops: the terminator, the release character and 0x0A-0x0D (line breaks; VT/FF too, which the slow path takes as data).
            uint stops = (Vector256.Equals(v, vterm) | Vector256.Equals(v, vrel) | Vector256.LessThanOrEqual(v - v0a, v03)).ExtractMostSignificantBits();
            uint seps = Vector256.Equals(v, vsep).ExtractMostSignificantBits();
            uint keep = uint.MaxValue;
            uint data = uint.MaxValue; // the segment's bytes in this block, escaped ones included
            if ((stops | carry) != 0)
            {
                int k = BitOperations.TrailingZeroCount(stops);
                if (carry == 0 && stops != 0 && Unsafe.Add(ref r0, i + k) == term)
                {
                    keep = (1u << k) - 1;
                    data = keep;
                }
                else
                {
                    // Release characters: the byte after each is data (no separator or terminator). A release character
                    // escaped itself ("??") or a line break goes the exact way.
                    if (!hasRelease)
                    {
                        return false;
                    }

                    uint rels = Vector256.Equals(v, vrel).ExtractMostSignificantBits();
                    uint escaped = (rels << 1) | carry;
                    if ((rels & escaped) != 0)
                    {
                        return false;
                    }

                    // A line break after a release character is a wrap (the release applies past it): the exact way.
                    uint breaks = Vector256.LessThanOrEqual(v - v0a, v03).ExtractMostSignificantBits();
                    if ((breaks & escaped) != 0)
                    {
                        return false;
                    }

                    released = true;
                    stops = (Vector256.Equals(v, vterm).ExtractMostSignificantBits() | breaks) & ~escaped;
                    if (stops != 0)
                    {
                        k = BitOperations.TrailingZeroCount(stops);
                        if (Unsafe.Add(ref r0, i + k) != term)
                        {
                            return false;
                        }

                        data = (1u << k) - 1;
                        keep = data & ~escaped;
                    }
                    else
                    {
                        keep = ~escaped;
                        carry = rels >> 31;
                    }
                }
            }

            uint comps = Vector256.Equals(v, vcomp).ExtractMostSignificantBits() & keep;
            if (i == start)
            {
                firstComps = comps;
            }
            else if (i == start + 32)
            {
                secondComps = comps;
            }
            else
            {
                laterComps |= comps;
            }

            special |= comps | (Vector256.Equals(v, vrep).ExtractMostSignificantBits() & keep);
            notPlain |= Vector256.GreaterThan(v - v20, v5e).ExtractMostSignificantBits() & data;
            seps &= keep;
            if (seps != 0)
            {
                if (count >= room)
                {
                    return false;
                }

                // Eight positions written whatever the number of separators (the array has 34 spare entries here), so the
                // loop exit does not depend on the data: most segments have fewer than eight elements per block.
                int rel = i - start + 1;
                int n = BitOperations.PopCount(seps);
                ref int w = ref Unsafe.Add(ref b0, count);
                seps = PutTwo(ref w, rel, seps);
                seps = PutTwo(ref Unsafe.Add(ref w, 2), rel, seps);
                seps = PutTwo(ref Unsafe.Add(ref w, 4), rel, seps);
                seps = PutTwo(ref Unsafe.Add(ref w, 6), rel, seps);
                for (int k = 8; k < n; k++)
                {
                    Unsafe.Add(ref w, k) = rel + BitOperations.TrailingZeroCount(seps);
                    seps &= seps - 1;
                }

                count += n;
            }

            if (stops != 0)
            {
                int len = i - start + BitOperations.TrailingZeroCount(stops);
                if (!ReferenceEquals(_segArr, _buf))
                {
                    _segArr = _buf;
                }

                _segOff = start;
                _segLen = len;
                int next = start + len + 1;
                _pos = next;
                if (term == Lf)
                {
                    NewLine(_bufBase + next);
                }
                else if (next < _end && Unsafe.Add(ref r0, next) == Lf)
                {
                    // The line break after the terminator (what the skip loop would do first on the next call).
                    _pos = next + 1;
                    NewLine(_bufBase + next + 1);
                }

                Unsafe.Add(ref b0, count) = len + 1;
                _elemCount = count;
                // Known when every component separator lies in the first 64 bytes (a separator at byte 63 makes it negative:
                // unknown); escaped ones are data, not in the mask. Bytes from 64 on then hold none.
                _compMask = laterComps == 0 ? (long)(firstComps | ((ulong)secondComps << 32)) : -1;
                _flags = (released ? SegmentFlagRelease : 0) | (special != 0 ? SegmentFlagSpecial : 0) | (notPlain != 0 ? SegmentFlagNotPlain : 0);

                // The tag from the first four bytes (32 are buffered): its length is the first bound.
                int tagLen = count > 1 ? Unsafe.Add(ref b0, 1) - 1 : len;
                uint head = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref r0, start)));
                _tag = (uint)(tagLen - 1) < 3 ? (int)(head >> (32 - (8 * tagLen))) : (tagLen == 0 ? 0 : -1);
                return true;
            }

            i += 32;
        }
    }

    /// <summary>The next two element starts from a separator mask (unrolled: the JIT keeps a counted loop).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint PutTwo(ref int w, int rel, uint seps)
    {
        w = rel + BitOperations.TrailingZeroCount(seps);
        seps &= seps - 1;
        Unsafe.Add(ref w, 1) = rel + BitOperations.TrailingZeroCount(seps);
        return seps & (seps - 1);
    }

    /// <summary>Any segment: line breaks inside (wrapped files) are dropped, release characters honoured, the buffer refilled as needed.</summary>
    private void ReadSegmentSlow(EdiDelimiters d)
    {
        byte term = d.Segment;
        byte release = d.Release;
        int rel = 0;
        bool breaks = false;
        while (true)
        {
            int i = _buf.AsSpan(_pos + rel, _end - _pos - rel).IndexOfAny(_stops);
            if (i < 0)
            {
                rel = _end - _pos;
                if (!Fill())
                {
                    throw Truncated(term);
                }

                continue;
            }

            rel += i;
            byte b = _buf[_pos + rel];
            if (b == term)
            {
                break;
            }

            if (b == release)
            {
                // A line break right after the release character is the wrap of a file cut at a fixed width, not the
                // escaped byte: it is dropped like any wrap and the release applies to the first byte after it.
                rel++;
                while (true)
                {
                    while (_pos + rel >= _end)
                    {
                        if (!Fill())
                        {
                            throw Truncated(term);
                        }
                    }

                    byte next = _buf[_pos + rel];
                    if ((next != Cr && next != Lf) || next == term)
                    {
                        break;
                    }

                    breaks = true;
                    if (next == Lf)
                    {
                        NewLine(_bufBase + _pos + rel + 1);
                    }

                    rel++;
                }

                rel++;
                continue;
            }

            breaks = true;
            if (b == Lf)
            {
                NewLine(_bufBase + _pos + rel + 1);
            }

            rel++;
        }

        if (breaks)
        {
            if (_scratch.Length < rel)
            {
                _scratch = new byte[Math.Max(rel, 256)];
            }

            int n = 0;
            for (int k = 0; k < rel; k++)
            {
                byte b = _buf[_pos + k];
                if ((b == Cr || b == Lf) && b != term)
                {
                    continue;
                }

                _scratch[n++] = b;
            }

            _segArr = _scratch;
            _segOff = 0;
            _segLen = n;
        }
        else
        {
            _segArr = _buf;
            _segOff = _pos;
            _segLen = rel;
        }

        _pos += rel + 1;
        if (term == Lf)
        {
            NewLine(_bufBase + _pos);
        }

        Split(d);
    }

    private bool SyntaxVersion4(ReadOnlySpan<byte> s001)
    {
        int c = s001.IndexOf(Delimiters.Component);
        return c >= 0 && s001[(c + 1)..].StartsWith("4"u8) && (s001.Length == c + 2 || s001[c + 2] == Delimiters.Component);
    }

    /// <summary>Cheap first test for <see cref="HeaderAhead"/> (IMD, UNH, UNT... are not headers): the 2nd and 3rd bytes of ISA, UNA or UNB.</summary>
    private bool MaybeHeader()
    {
        if (_end - _pos < 4)
        {
            return true;
        }

        byte b1 = _buf[_pos + 1], b2 = _buf[_pos + 2];
        return (b1 == (byte)'S' && b2 == (byte)'A') || (b1 == (byte)'N' && (b2 == (byte)'A' || b2 == (byte)'B'));
    }

    private bool HeaderAhead(EdiDelimiters d)
    {
        if (!EnsureAvailable(4))
        {
            return false;
        }

        var h = _buf.AsSpan(_pos, 4);
        if (h.StartsWith("ISA"u8) || h.StartsWith("UNA"u8))
        {
            return !char.IsAsciiLetterOrDigit((char)h[3]);
        }

        return h.StartsWith("UNB"u8) && (h[3] == (byte)'+' || h[3] == 0x1D) && h[3] != d.Element;
    }

    private void NewLine(long nextLineStart)
    {
        _line++;
        _lineStart = nextLineStart;
    }

    private void Split(EdiDelimiters d)
    {
        var seg = new ReadOnlySpan<byte>(_segArr, _segOff, _segLen);
        int count = 0;
        int start = 0;
        int max = _options.MaxElementsPerSegment;
        byte sep = d.Element;
        _flags = SegmentFlagsAll;
        bool done = Vector128.IsHardwareAccelerated && SplitFast(seg, d, max, out count);
        if (done)
        {
            // bounds and flags set in one pass
        }
        else if (ResetCount(ref count) && d.Release == 0)
        {
            while (true)
            {
                AddBound(ref count, start, max);
                int i = seg[start..].IndexOf(sep);
                if (i < 0)
                {
                    break;
                }

                start += i + 1;
            }
        }
        else
        {
            AddBound(ref count, 0, max);
            int p = 0;
            while (p < seg.Length)
            {
                int i = seg[p..].IndexOfAny(sep, d.Release);
                if (i < 0)
                {
                    break;
                }

                p += i;
                if (seg[p] == d.Release)
                {
                    p += 2;
                    continue;
                }

                p++;
                AddBound(ref count, p, max);
            }
        }

        if (_bounds.Length <= count)
        {
            Array.Resize(ref _bounds, count * 2);
        }

        _bounds[count] = seg.Length + 1;
        _elemCount = count;
    }

    /// <summary>Segment has a component or repetition separator (not escaped; the validator then looks at each element).</summary>
    internal const int SegmentFlagSpecial = 1;

    /// <summary>
    /// Segment has release characters, each escaping the one byte after it (none escapes a release character or a line
    /// break: those segments get <see cref="SegmentFlagsAll"/>).
    /// </summary>
    internal const int SegmentFlagRelease = 2;

    /// <summary>Segment has a byte outside printable ASCII (0x20-0x7E).</summary>
    internal const int SegmentFlagNotPlain = 4;

    /// <summary>Read by the exact path: nothing is known about the segment, the validator scans it itself.</summary>
    internal const int SegmentFlagUnscanned = 8;

    internal const int SegmentFlagsAll = SegmentFlagSpecial | SegmentFlagRelease | SegmentFlagNotPlain | SegmentFlagUnscanned;

    private int _flags = SegmentFlagsAll;

    private long _compMask = -1;

    /// <summary>
    /// Bit k set when byte k of the current segment is an (unescaped) component separator, for a segment the vector pass
    /// read with all its component separators in the first 64 bytes (none from byte 64 on); negative when not known (the
    /// validator then looks for components itself).
    /// </summary>
    internal long ComponentMask => _compMask;

    /// <summary>What the validator needs to know about the current segment without scanning it again.</summary>
    internal int SegmentFlags => _flags;

    /// <summary>
    /// One pass, 16 bytes at a time: element separators from a compare mask (instead of one search call per element)
    /// and the segment flags. False (nothing kept) when the segment holds a release character: the escaping loop splits it.
    /// </summary>
    private bool ResetCount(ref int count)
    {
        count = 0;
        _flags = SegmentFlagsAll;
        return true;
    }

    private bool SplitFast(ReadOnlySpan<byte> seg, EdiDelimiters d, int max, out int count)
    {
        count = 0;
        byte sep = d.Element;
        byte comp = d.Component;
        byte rep = d.Repetition != 0 ? d.Repetition : comp;
        byte rel = d.Release != 0 ? d.Release : comp;
        bool hasRelease = d.Release != 0;
        AddBound(ref count, 0, max);
        ref byte r0 = ref MemoryMarshal.GetReference(seg);
        var vsep = Vector128.Create(sep);
        var vcomp = Vector128.Create(comp);
        var vrep = Vector128.Create(rep);
        var vrel = Vector128.Create(rel);
        var v20 = Vector128.Create((byte)0x20);
        var v5e = Vector128.Create((byte)0x5E);
        var special = Vector128<byte>.Zero;
        var release = Vector128<byte>.Zero;
        var notPlain = Vector128<byte>.Zero;
        int i = 0;
        for (; i + 16 <= seg.Length; i += 16)
        {
            var v = Vector128.LoadUnsafe(ref r0, (nuint)i);
            special |= Vector128.Equals(v, vcomp) | Vector128.Equals(v, vrep);
            release |= Vector128.Equals(v, vrel);
            notPlain |= Vector128.GreaterThan(v - v20, v5e);
            uint m = Vector128.Equals(v, vsep).ExtractMostSignificantBits();
            while (m != 0)
            {
                AddBound(ref count, i + BitOperations.TrailingZeroCount(m) + 1, max);
                m &= m - 1;
            }
        }

        int flags = 0;
        for (; i < seg.Length; i++)
        {
            byte b = seg[i];
            if (b == sep)
            {
                AddBound(ref count, i + 1, max);
            }
            else if (b == comp || b == rep)
            {
                flags |= SegmentFlagSpecial;
            }
            else if (hasRelease && b == rel)
            {
                return false;
            }

            if ((byte)(b - 0x20) > 0x5E)
            {
                flags |= SegmentFlagNotPlain;
            }
        }

        if (hasRelease && release != Vector128<byte>.Zero)
        {
            return false;
        }

        if (special != Vector128<byte>.Zero)
        {
            flags |= SegmentFlagSpecial;
        }

        if (notPlain != Vector128<byte>.Zero)
        {
            flags |= SegmentFlagNotPlain;
        }

        _flags = flags;
        return true;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void AddBound(ref int count, int start, int max)
    {
        if (count >= max)
        {
            ThrowTooManyElements(max);
        }

        if (_bounds.Length <= count + 1)
        {
            Array.Resize(ref _bounds, _bounds.Length * 2);
        }

        _bounds[count++] = start;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ThrowTooManyElements(int max) => throw Error($"segment has more than {max} elements", SegmentOffset, SegmentLine, SegmentColumn);

    private EdiException Truncated(byte term)
    {
        string t = term < 0x20 ? $"0x{term:X2}" : ((char)term).ToString();
        return Error($"truncated input: segment starting here has no terminator '{t}' before the end of input at byte {_bufBase + _end}", SegmentOffset, SegmentLine, SegmentColumn);
    }

    internal EdiException Error(string message, long offset, int line, int column)
        => new(message, _options.SourceName, offset, line, column);

    private EdiException ErrorHere(string message)
    {
        long abs = _bufBase + _pos;
        return Error(message, abs, _line, (int)(abs - _lineStart) + 1);
    }

    /// <summary>Reads more input, keeping everything from <see cref="_pos"/> on. False at end of input.</summary>
    private bool Fill()
    {
        if (_eof)
        {
            return false;
        }

        if (_pos > 0)
        {
            int len = _end - _pos;
            Buffer.BlockCopy(_buf, _pos, _buf, 0, len);
            _bufBase += _pos;
            _end = len;
            _pos = 0;
        }
        else if (_end == _buf.Length)
        {
            if (_buf.Length >= _options.MaxSegmentLength + 1024)
            {
                throw Error($"segment longer than {_options.MaxSegmentLength} bytes (no segment terminator found)", _bufBase, _line, (int)(_bufBase - _lineStart) + 1);
            }

            var bigger = ArrayPool<byte>.Shared.Rent(_buf.Length * 2);
            Buffer.BlockCopy(_buf, 0, bigger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = bigger;
        }

        while (true)
        {
            int n = _stream.Read(_buf, _end, _buf.Length - _end);
            if (n <= 0)
            {
                _eof = true;
                return false;
            }

            _end += n;
            return true;
        }
    }

    private bool EnsureAvailable(int count)
    {
        while (_end - _pos < count)
        {
            if (!Fill())
            {
                return false;
            }
        }

        return true;
    }

    private bool Detect()
    {
        HasServiceStringAdvice = false;
        while (true)
        {
            if (_pos == _end && !Fill())
            {
                if (!_sawInterchange)
                {
                    throw ErrorHere("empty input: no EDI interchange found (expected ISA, UNA or UNB)");
                }

                return false;
            }

            byte b = _buf[_pos];
            if (_bufBase + _pos == 0 && _transcoder == null && (b is 0x00 or 0xFE or 0xFF) && DetectUcs2())
            {
                continue;
            }

            if (_bufBase + _pos == 0 && b == 0xEF)
            {
                EnsureAvailable(3);
                if (_end - _pos >= 3 && _buf[_pos + 1] == 0xBB && _buf[_pos + 2] == 0xBF)
                {
                    _pos += 3;
                    continue;
                }
            }

            if (b == Lf)
            {
                _pos++;
                NewLine(_bufBase + _pos);
                continue;
            }

            if (b is Cr or (byte)' ' or (byte)'\t' or 0 or 0x1A or 0x0C)
            {
                _pos++;
                continue;
            }

            break;
        }

        EnsureAvailable(3);
        var head = _buf.AsSpan(_pos, Math.Min(3, _end - _pos));
        if (head.SequenceEqual("ISA"u8))
        {
            DetectIsa();
        }
        else if (head.SequenceEqual("UNA"u8))
        {
            DetectUna();
        }
        else if (head.SequenceEqual("UNB"u8))
        {
            DetectUnb();
        }
        else
        {
            EnsureAvailable(24);
            var sample = _buf.AsSpan(_pos, Math.Min(24, _end - _pos));
            string shown = Printable(sample);
            throw ErrorHere(_sawInterchange
                ? $"unexpected data after the end of the previous interchange: expected ISA, UNA or UNB but found \"{shown}\""
                : $"not EDI: expected an interchange header ISA, UNA or UNB but found \"{shown}\"");
        }

        _sawInterchange = true;
        var d = Delimiters;
        Span<byte> stops = stackalloc byte[4];
        int n = 0;
        stops[n++] = d.Segment;
        if (d.Segment != Cr)
        {
            stops[n++] = Cr;
        }

        if (d.Segment != Lf)
        {
            stops[n++] = Lf;
        }

        if (d.Release != 0)
        {
            stops[n++] = d.Release;
        }

        _stops = SearchValues.Create(stops[..n]);
        return true;
    }

    /// <summary>
    /// UCS-2 input: a BOM (FE FF / FF FE) or 00 'U' / 00 'I' at the start. Everything read so far and the rest of the
    /// stream are transcoded to UTF-8 from here on; the interchange is then read like UNOY.
    /// </summary>
    private bool DetectUcs2()
    {
        EnsureAvailable(4);
        var h = _buf.AsSpan(_pos, _end - _pos);
        System.Text.Encoding? enc = null;
        int skip = 0;
        if (h.Length >= 2 && h[0] == 0xFE && h[1] == 0xFF)
        {
            enc = System.Text.Encoding.BigEndianUnicode;
            skip = 2;
        }
        else if (h.Length >= 2 && h[0] == 0xFF && h[1] == 0xFE)
        {
            enc = System.Text.Encoding.Unicode;
            skip = 2;
        }
        else if (h.Length >= 4 && h[0] == 0 && h[2] == 0 && (h[1] == (byte)'U' || h[1] == (byte)'I') && char.IsAsciiLetterUpper((char)h[3]))
        {
            enc = System.Text.Encoding.BigEndianUnicode;
        }

        if (enc == null)
        {
            return false;
        }

        var pending = h[skip..].ToArray();
        _transcoder = System.Text.Encoding.CreateTranscodingStream(new PrefixedStream(pending, _source), enc, System.Text.Encoding.UTF8, leaveOpen: false);
        _stream = _transcoder;
        InputTranscodedFrom = enc.CodePage == 1201 ? "UCS-2BE" : "UCS-2LE";
        _pos = 0;
        _end = 0;
        _bufBase = 0;
        _eof = false;
        return true;
    }

    /// <summary>Bytes already buffered, then the rest of the inner stream (never disposes the inner stream).</summary>
    private sealed class PrefixedStream(byte[] prefix, Stream inner) : Stream
    {
        private int _p;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_p < prefix.Length)
            {
                int n = Math.Min(count, prefix.Length - _p);
                Buffer.BlockCopy(prefix, _p, buffer, offset, n);
                _p += n;
                return n;
            }

            return inner.Read(buffer, offset, count);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    internal static string Printable(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            byte b = bytes[i];
            chars[i] = b is >= 0x20 and < 0x7F ? (char)b : '.';
        }

        return new string(chars);
    }

    // ISA: fixed-width header; element separator at 3, repetition separator (from 00402) at 82,
    // version at 84..88, component separator at 104 and the segment terminator at 105.
    private static readonly int[] IsaSeparatorPositions = [3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103];

    private void DetectIsa()
    {
        Span<byte> isa = stackalloc byte[106];
        int n = 0;
        int k = 0;
        while (n < 106)
        {
            if (_pos + k >= _end)
            {
                if (!Fill())
                {
                    throw ErrorHere($"truncated ISA segment: the fixed-length interchange header needs 106 characters, only {n} present before the end of input");
                }

                continue;
            }

            byte b = _buf[_pos + k];
            k++;
            if ((b == Cr || b == Lf) && n < 105)
            {
                continue; // wrapped header
            }

            isa[n++] = b;
            if (k > 400)
            {
                break;
            }
        }

        if (n < 106)
        {
            throw ErrorHere("malformed ISA segment: too many line breaks in the fixed-length header");
        }

        byte elem = isa[3];
        if (char.IsAsciiLetterOrDigit((char)elem) || elem == (byte)' ')
        {
            throw ErrorHere($"malformed ISA segment: '{(char)elem}' cannot be the element separator");
        }

        foreach (int p in IsaSeparatorPositions)
        {
            if (isa[p] != elem)
            {
                throw ErrorHere($"malformed ISA segment: expected the element separator '{(char)elem}' at header position {p + 1} (the ISA is fixed-width: 106 characters) but found '{Printable(isa.Slice(p, 1))}'");
            }
        }

        byte comp = isa[104];
        byte term = isa[105];
        if (comp == elem || term == elem || term == comp || char.IsAsciiLetterOrDigit((char)term))
        {
            throw ErrorHere("malformed ISA segment: component separator (ISA16) and segment terminator must differ from each other and from the element separator");
        }

        byte rep = 0;
        var version = isa.Slice(84, 5);
        if (version.SequenceCompareTo("00402"u8) >= 0 && isa[82] != (byte)'U' && !char.IsAsciiLetterOrDigit((char)isa[82]) && isa[82] != elem && isa[82] != comp && isa[82] != term)
        {
            rep = isa[82];
        }

        Standard = EdiStandard.X12;
        Delimiters = new EdiDelimiters(elem, comp, rep, term, 0, (byte)'.');
    }

    private void DetectUna()
    {
        if (!EnsureAvailable(9))
        {
            throw ErrorHere("truncated UNA service string advice: 9 characters expected");
        }

        var una = _buf.AsSpan(_pos, 9);
        byte comp = una[3], elem = una[4], dec = una[5], rel = una[6], rep = una[7], term = una[8];
        if (rel == (byte)' ')
        {
            rel = 0;
        }

        if (rep == (byte)' ')
        {
            rep = 0;
        }

        if (comp == elem || comp == term || elem == term || (rel != 0 && (rel == comp || rel == elem || rel == term))
            || char.IsAsciiLetterOrDigit((char)comp) || char.IsAsciiLetterOrDigit((char)elem) || char.IsAsciiLetterOrDigit((char)term))
        {
            throw ErrorHere($"malformed UNA service string advice \"{Printable(una)}\": the component, element, release and segment characters must be distinct non-alphanumeric characters");
        }

        Standard = EdiStandard.Edifact;
        HasServiceStringAdvice = true;
        Delimiters = new EdiDelimiters(elem, comp, rep, term, rel, dec);
        _pos += 9;
        SegmentCount++;
    }

    private void DetectUnb()
    {
        EnsureAvailable(10);
        var head = _buf.AsSpan(_pos, Math.Min(10, _end - _pos));
        if (head.Length < 4)
        {
            throw ErrorHere("truncated UNB segment");
        }

        Standard = EdiStandard.Edifact;
        if (head[3] == 0x1D)
        {
            Delimiters = EdiDelimiters.EdifactLevelB;
            return;
        }

        if (head[3] != (byte)'+')
        {
            throw ErrorHere($"malformed UNB segment: without a UNA service string advice the element separator must be '+' but found '{Printable(head.Slice(3, 1))}'");
        }

        var d = EdiDelimiters.EdifactDefault;
        if (head.Length >= 10 && head[8] == (byte)':' && head[9] == (byte)'4')
        {
            d = d with { Repetition = (byte)'*' };
        }

        Delimiters = d;
    }

    public void Dispose()
    {
        if (_buf.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = [];
            _segArr = [];
        }

        _transcoder?.Dispose();
        if (_ownsStream)
        {
            _source.Dispose();
        }
    }
}
