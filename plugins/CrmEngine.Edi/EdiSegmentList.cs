using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Text;

namespace CrmEngine.Edi;

/// <summary>
/// The segments of one transaction set / message, copied into one reusable byte arena
/// (no per-segment or per-element objects). Views are handed out as <see cref="EdiSegment"/>.
/// </summary>
public sealed class EdiSegmentList
{
    private byte[] _data = new byte[4096];
    private int _dataLength;
    private int[] _bounds = new int[1024];
    private int _boundsLength;
    private Rec[] _segs = new Rec[128];
    private int _count;

    private struct Rec
    {
        public int DataStart;
        public int BoundsStart;
        public int ElementCount;
        public int Tag;
        public long Offset;
        public int Line;
        public int Flags;
    }

    public EdiSegmentList(EdiStandard standard, EdiDelimiters delimiters, Encoding encoding)
    {
        Standard = standard;
        Delimiters = delimiters;
        Encoding = encoding;
    }

    public EdiStandard Standard { get; internal set; }

    public EdiDelimiters Delimiters { get; internal set; }

    public Encoding Encoding { get; internal set; }

    public int Count => _count;

    public EdiSegment this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }

            return new EdiSegment(this, index);
        }
    }

    public void Clear()
    {
        _count = 0;
        _dataLength = 0;
        _boundsLength = 0;
    }

    /// <summary>Deep copy, for keeping a set after the reader moved on.</summary>
    public EdiSegmentList Clone()
    {
        var c = new EdiSegmentList(Standard, Delimiters, Encoding)
        {
            _data = _data.AsSpan(0, _dataLength).ToArray(),
            _dataLength = _dataLength,
            _bounds = _bounds.AsSpan(0, _boundsLength).ToArray(),
            _boundsLength = _boundsLength,
            _segs = _segs.AsSpan(0, _count).ToArray(),
            _count = _count,
        };
        return c;
    }

    /// <summary>The reader's per-segment path: one copy of the bytes and the bounds, the tag packed from its known length.</summary>
    internal void Add(EdiTokenizer t)
    {
        t.GetCurrent(out var src, out int srcOff, out int segLength, out var srcBounds, out int boundCount);
        if (_count == _segs.Length || _dataLength + segLength + 32 > _data.Length || _boundsLength + boundCount + 8 > _bounds.Length)
        {
            Add(t.SegmentBytes, t.ElementBounds, t.SegmentOffset, t.SegmentLine);
            _segs[_count - 1].Flags = t.SegmentFlags;
            return;
        }

        // Short segments (most) are copied as one 32-byte block and their bounds as one 8-int block: the arena keeps
        // that much slack, and bytes copied beyond the segment are overwritten by the next one.
        ref byte from = ref src[srcOff];
        if (segLength <= 32 && srcOff + 32 <= src.Length)
        {
            Vector256.LoadUnsafe(ref from).StoreUnsafe(ref _data[_dataLength]);
        }
        else
        {
            new ReadOnlySpan<byte>(src, srcOff, segLength).CopyTo(new Span<byte>(_data, _dataLength, segLength));
        }

        if (boundCount <= 8 && srcBounds.Length >= 8)
        {
            Vector256.LoadUnsafe(ref srcBounds[0]).StoreUnsafe(ref _bounds[_boundsLength]);
        }
        else
        {
            new ReadOnlySpan<int>(srcBounds, 0, boundCount).CopyTo(new Span<int>(_bounds, _boundsLength, boundCount));
        }

        ref var r = ref _segs[_count++];
        r.DataStart = _dataLength;
        r.BoundsStart = _boundsLength;
        r.ElementCount = boundCount - 1;
        r.Tag = EdiTag.PackCurrent(src, srcOff, segLength, srcBounds, boundCount);
        r.Offset = t.SegmentOffset;
        r.Line = t.SegmentLine;
        r.Flags = t.SegmentFlags;
        _dataLength += segLength;
        _boundsLength += boundCount;
    }

    /// <summary>Appends a segment given as raw bytes and element start offsets (last entry = length + 1).</summary>
    public void Add(ReadOnlySpan<byte> segment, ReadOnlySpan<int> bounds, long offset = -1, int line = 0)
    {
        if (_count == _segs.Length)
        {
            Array.Resize(ref _segs, _count * 2);
        }

        if (_dataLength + segment.Length > _data.Length)
        {
            Array.Resize(ref _data, Math.Max(_data.Length * 2, _dataLength + segment.Length));
        }

        if (_boundsLength + bounds.Length > _bounds.Length)
        {
            Array.Resize(ref _bounds, Math.Max(_bounds.Length * 2, _boundsLength + bounds.Length));
        }

        segment.CopyTo(_data.AsSpan(_dataLength));
        bounds.CopyTo(_bounds.AsSpan(_boundsLength));
        ref var r = ref _segs[_count++];
        r.DataStart = _dataLength;
        r.BoundsStart = _boundsLength;
        r.ElementCount = bounds.Length - 1;
        var tag = segment[..Math.Max(0, bounds.Length > 1 ? bounds[1] - 1 : segment.Length)];
        r.Tag = EdiTag.Pack(tag);
        r.Offset = offset;
        r.Line = line;
        r.Flags = EdiTokenizer.SegmentFlagsAll;
        _dataLength += segment.Length;
        _boundsLength += bounds.Length;
    }

    internal int TagOf(int index) => _segs[index].Tag;

    /// <summary>Everything of one segment the validator reads, as its storage (no spans: the validator keeps them across calls).</summary>
    internal void GetRaw(int index, out byte[] data, out int dataStart, out int[] bounds, out int boundsStart, out int boundCount, out int tag, out int flags, out long offset, out int line)
    {
        ref var r = ref _segs[index];
        data = _data;
        dataStart = r.DataStart;
        bounds = _bounds;
        boundsStart = r.BoundsStart;
        boundCount = r.ElementCount + 1;
        tag = r.Tag;
        flags = r.Flags;
        offset = r.Offset;
        line = r.Line;
    }

    internal int FlagsOf(int index) => _segs[index].Flags;

    internal int ElementCountOf(int index) => _segs[index].ElementCount;

    internal long OffsetOf(int index) => _segs[index].Offset;

    internal int LineOf(int index) => _segs[index].Line;

    internal ReadOnlySpan<byte> ElementOf(int index, int element)
    {
        ref var r = ref _segs[index];
        if ((uint)element >= (uint)r.ElementCount)
        {
            return default;
        }

        int s = _bounds[r.BoundsStart + element];
        int e = _bounds[r.BoundsStart + element + 1] - 1;
        return new ReadOnlySpan<byte>(_data, r.DataStart + s, e - s);
    }

    internal void GetSegment(int index, out ReadOnlySpan<byte> data, out ReadOnlySpan<int> bounds)
    {
        ref var r = ref _segs[index];
        bounds = new ReadOnlySpan<int>(_bounds, r.BoundsStart, r.ElementCount + 1);
        data = new ReadOnlySpan<byte>(_data, r.DataStart, bounds[r.ElementCount] - 1);
    }

    internal ReadOnlySpan<byte> RawOf(int index)
    {
        ref var r = ref _segs[index];
        int len = _bounds[r.BoundsStart + r.ElementCount] - 1;
        return new ReadOnlySpan<byte>(_data, r.DataStart, len);
    }
}

/// <summary>Packs a segment tag (up to 3 ASCII bytes) into an int for cheap comparisons.</summary>
public static class EdiTag
{
    /// <summary>The packed tag of a tokenized segment (src[offset..+length), element bounds[0..count)), from its known length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int PackCurrent(byte[] src, int offset, int length, int[] bounds, int count)
    {
        int tagLength = count > 1 ? bounds[1] - 1 : length;
        ref byte from = ref src[offset];
        return tagLength switch
        {
            3 => (from << 16) | (Unsafe.Add(ref from, 1) << 8) | Unsafe.Add(ref from, 2),
            2 => (from << 8) | Unsafe.Add(ref from, 1),
            _ => Pack(new ReadOnlySpan<byte>(src, offset, tagLength)),
        };
    }

    public static int Pack(ReadOnlySpan<byte> tag)
    {
        if (tag.Length is 0 or > 3)
        {
            return tag.Length == 0 ? 0 : -1;
        }

        int v = 0;
        foreach (byte b in tag)
        {
            v = (v << 8) | b;
        }

        return v;
    }

    public static int Pack(string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        Span<byte> b = stackalloc byte[3];
        if (tag.Length is 0 or > 3)
        {
            return -1;
        }

        for (int i = 0; i < tag.Length; i++)
        {
            b[i] = (byte)tag[i];
        }

        return Pack(b[..tag.Length]);
    }

    public static string Unpack(int packed)
    {
        if (packed <= 0)
        {
            return "?";
        }

        Span<char> c = stackalloc char[3];
        int n = 0;
        for (int shift = 16; shift >= 0; shift -= 8)
        {
            int b = (packed >> shift) & 0xFF;
            if (b != 0 || n > 0)
            {
                c[n++] = (char)b;
            }
        }

        return new string(c[..n]);
    }
}

/// <summary>A view of one segment in an <see cref="EdiSegmentList"/>. Element 0 is the tag; elements and components are 1-based.</summary>
public readonly struct EdiSegment
{
    private readonly EdiSegmentList _list;
    private readonly int _index;

    internal EdiSegment(EdiSegmentList list, int index)
    {
        _list = list;
        _index = index;
    }

    /// <summary>Zero-based index in the set; the standard's "position in set" is <see cref="Position"/>.</summary>
    public int Index => _index;

    /// <summary>1-based position in the transaction set (ST/UNH = 1).</summary>
    public int Position => _index + 1;

    public int PackedTag => _list.TagOf(_index);

    public string Tag => EdiTag.Unpack(_list.TagOf(_index));

    /// <summary>Number of data elements (the tag not counted).</summary>
    public int ElementCount => _list.ElementCountOf(_index) - 1;

    public long ByteOffset => _list.OffsetOf(_index);

    public int Line => _list.LineOf(_index);

    public EdiSegmentList List => _list;

    /// <summary>Raw bytes of element <paramref name="position"/> (1-based), release characters not removed.</summary>
    public ReadOnlySpan<byte> Raw(int position) => _list.ElementOf(_index, position);

    public ReadOnlySpan<byte> RawSegment => _list.RawOf(_index);

    /// <summary>Raw bytes of component <paramref name="component"/> (1-based) of element <paramref name="position"/> (its first repetition).</summary>
    public ReadOnlySpan<byte> RawComponent(int position, int component)
        => EdiText.Component(RawRepeat(position, 1), component, _list.Delimiters);

    /// <summary>Number of repetitions of element <paramref name="position"/> (X12 from 00402, EDIFACT syntax 4): 0 when absent, 1 when it does not repeat.</summary>
    public int RepeatCount(int position) => EdiText.CountRepeats(Raw(position), _list.Delimiters);

    /// <summary>Raw bytes of repetition <paramref name="repeat"/> (1-based) of element <paramref name="position"/>; the whole element when it does not repeat.</summary>
    public ReadOnlySpan<byte> RawRepeat(int position, int repeat) => EdiText.Repeat(Raw(position), repeat, _list.Delimiters);

    /// <summary>
    /// Decoded text of an element (component 0) or component, release characters removed; empty when absent.
    /// For a repeating element this is its first repetition (see <see cref="Get(int, int, int)"/>).
    /// </summary>
    public string Get(int position, int component = 0) => Get(position, component, 1);

    /// <summary>Decoded text of repetition <paramref name="repeat"/> (1-based) of an element or of one of its components.</summary>
    public string Get(int position, int component, int repeat)
    {
        var raw = EdiText.Component(RawRepeat(position, repeat), component, _list.Delimiters);
        return EdiText.Decode(raw, _list.Delimiters.Release, _list.Encoding);
    }

    /// <summary>All repetitions of an element (or of one component of each), decoded.</summary>
    public IReadOnlyList<string> GetRepeats(int position, int component = 0)
    {
        int n = RepeatCount(position);
        var list = new string[n];
        for (int r = 1; r <= n; r++)
        {
            list[r - 1] = Get(position, component, r);
        }

        return list;
    }

    public bool Has(int position, int component = 0)
        => !EdiText.Component(RawRepeat(position, 1), component, _list.Delimiters).IsEmpty;

    public override string ToString() => EdiText.Decode(RawSegment, 0, _list.Encoding);
}

/// <summary>Byte-level helpers shared by reader, validator and writer.</summary>
public static class EdiText
{
    public static ReadOnlySpan<byte> Component(ReadOnlySpan<byte> element, int component, EdiDelimiters d)
    {
        if (component <= 0)
        {
            return element;
        }

        int index = 1;
        int start = 0;
        int p = 0;
        while (p < element.Length)
        {
            byte b = element[p];
            if (d.Release != 0 && b == d.Release)
            {
                p += 2;
                continue;
            }

            if (b == d.Component)
            {
                if (index == component)
                {
                    return element[start..p];
                }

                index++;
                start = p + 1;
            }

            p++;
        }

        return index == component ? element[start..] : default;
    }

    /// <summary>Repetition <paramref name="repeat"/> (1-based) of an element; the element itself when the interchange has no repetition separator or it does not occur.</summary>
    public static ReadOnlySpan<byte> Repeat(ReadOnlySpan<byte> element, int repeat, EdiDelimiters d)
    {
        byte sep = d.Repetition;
        if (sep == 0 || element.IndexOf(sep) < 0)
        {
            return repeat <= 1 ? element : default;
        }

        return Part(element, sep, d.Release, repeat);
    }

    /// <summary>Number of repetitions of an element: 0 when empty, 1 when it does not repeat.</summary>
    public static int CountRepeats(ReadOnlySpan<byte> element, EdiDelimiters d)
    {
        if (element.IsEmpty)
        {
            return 0;
        }

        if (d.Repetition == 0 || element.IndexOf(d.Repetition) < 0)
        {
            return 1;
        }

        return CountParts(element, d.Repetition, d.Release);
    }

    private static ReadOnlySpan<byte> Part(ReadOnlySpan<byte> element, byte sep, byte release, int index)
    {
        int n = 1;
        int start = 0;
        for (int p = 0; p < element.Length; p++)
        {
            byte b = element[p];
            if (release != 0 && b == release)
            {
                p++;
                continue;
            }

            if (b == sep)
            {
                if (n == index)
                {
                    return element[start..p];
                }

                n++;
                start = p + 1;
            }
        }

        return n == index ? element[start..] : default;
    }

    private static int CountParts(ReadOnlySpan<byte> element, byte sep, byte release)
    {
        if (release == 0 || element.IndexOf(release) < 0)
        {
            return element.Count(sep) + 1;
        }

        int n = 1;
        for (int p = 0; p < element.Length; p++)
        {
            if (element[p] == release)
            {
                p++;
            }
            else if (element[p] == sep)
            {
                n++;
            }
        }

        return n;
    }

    public static int CountComponents(ReadOnlySpan<byte> element, EdiDelimiters d)
    {
        if (element.IsEmpty)
        {
            return 0;
        }

        if (d.Release == 0 || element.IndexOf(d.Release) < 0)
        {
            return element.Count(d.Component) + 1;
        }

        int n = 1;
        for (int p = 0; p < element.Length; p++)
        {
            if (element[p] == d.Release)
            {
                p++;
            }
            else if (element[p] == d.Component)
            {
                n++;
            }
        }

        return n;
    }

    /// <summary>Decodes bytes to text, dropping release characters (EDIFACT) first.</summary>
    public static string Decode(ReadOnlySpan<byte> raw, byte release, Encoding encoding)
    {
        ArgumentNullException.ThrowIfNull(encoding);
        if (raw.IsEmpty)
        {
            return string.Empty;
        }

        if (release == 0 || raw.IndexOf(release) < 0)
        {
            return encoding.GetString(raw);
        }

        Span<byte> tmp = raw.Length <= 512 ? stackalloc byte[raw.Length] : new byte[raw.Length];
        int n = Unescape(raw, release, tmp);
        return encoding.GetString(tmp[..n]);
    }

    public static int Unescape(ReadOnlySpan<byte> raw, byte release, Span<byte> destination)
    {
        int n = 0;
        for (int i = 0; i < raw.Length; i++)
        {
            byte b = raw[i];
            if (b == release && release != 0 && i + 1 < raw.Length)
            {
                b = raw[++i];
            }

            destination[n++] = b;
        }

        return n;
    }
}
