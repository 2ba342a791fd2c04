using System.Buffers;
using System.Globalization;
using System.Text;

namespace CrmEngine.Edi;

public enum EdiControlLevel
{
    Interchange,
    Group,
    Set,
}

/// <summary>Supplies control numbers. The integrator persists them so numbers are never reused.</summary>
public interface IEdiControlNumbers
{
    long Next(EdiControlLevel level);
}

/// <summary>In-memory sequence starting at given values (thread-safe).</summary>
public sealed class EdiControlNumberSequence(long nextInterchange = 1, long nextGroup = 1, long nextSet = 1) : IEdiControlNumbers
{
    private long _i = nextInterchange - 1;
    private long _g = nextGroup - 1;
    private long _s = nextSet - 1;

    public long Next(EdiControlLevel level) => level switch
    {
        EdiControlLevel.Interchange => Interlocked.Increment(ref _i),
        EdiControlLevel.Group => Interlocked.Increment(ref _g),
        _ => Interlocked.Increment(ref _s),
    };
}

/// <summary>How to write for one trading partner.</summary>
public sealed class EdiWriterOptions
{
    public EdiStandard Standard { get; init; } = EdiStandard.X12;

    /// <summary>Partner delimiters; defaults to <see cref="EdiDelimiters.X12Default"/> / <see cref="EdiDelimiters.EdifactDefault"/>.</summary>
    public EdiDelimiters? Delimiters { get; init; }

    /// <summary>EDIFACT syntax identifier (UNOA, UNOB, UNOC, UNOW, UNOY). X12 writes UTF-8 (ASCII for basic data).</summary>
    public string CharacterSet { get; init; } = "UNOC";

    /// <summary>EDIFACT syntax version (UNB 0002).</summary>
    public string SyntaxVersion { get; init; } = "3";

    /// <summary>Write a UNA service string advice (EDIFACT). Always written when delimiters differ from the defaults.</summary>
    public bool WriteServiceStringAdvice { get; init; } = true;

    /// <summary>Written after every segment terminator, e.g. "\r\n" for partners that want one segment per line.</summary>
    public string SegmentSuffix { get; init; } = "";

    public string SenderQualifier { get; init; } = "ZZ";

    public string SenderId { get; init; } = "SENDER";

    public string ReceiverQualifier { get; init; } = "ZZ";

    public string ReceiverId { get; init; } = "RECEIVER";

    /// <summary>X12 ISA12 (00401, 00501).</summary>
    public string InterchangeVersion { get; init; } = "00401";

    public bool Test { get; init; }

    public bool AcknowledgementRequested { get; init; }

    public IEdiControlNumbers ControlNumbers { get; init; } = new EdiControlNumberSequence();

    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// Streaming EDI writer: envelopes with correct counts and control numbers, ISA padding,
/// EDIFACT release escaping, partner delimiters and character set. Segments are built in a pooled buffer.
/// </summary>
public sealed class EdiWriter : IDisposable
{
    private readonly Stream _out;
    private readonly EdiWriterOptions _o;
    private readonly EdiDelimiters _d;
    private readonly Encoding _enc;
    private readonly byte[] _suffix;
    private readonly bool _leaveOpen;
    private byte[] _buf;
    private int _len;
    private byte[] _scratch = new byte[256];
    private int _pendingElements;
    private bool _inSegment;
    private int _setSegments;
    private int _groupSets;
    private int _interchangeCount;
    private string _icn = "";
    private string _gcn = "";
    private string _scn = "";
    private bool _inGroup;
    private DateTimeOffset _now;

    public EdiWriter(Stream output, EdiWriterOptions? options = null, bool leaveOpen = true)
    {
        ArgumentNullException.ThrowIfNull(output);
        _out = output;
        _leaveOpen = leaveOpen;
        _o = options ?? new EdiWriterOptions();
        _d = _o.Delimiters ?? (_o.Standard == EdiStandard.X12 ? EdiDelimiters.X12Default
            : _o.SyntaxVersion == "4" ? EdiDelimiters.EdifactDefault with { Repetition = (byte)'*' } : EdiDelimiters.EdifactDefault);
        _enc = _o.Standard == EdiStandard.X12
            ? new UTF8Encoding(false, true)
            : _o.CharacterSet.ToUpperInvariant() switch
            {
                "UNOA" or "UNOB" => Encoding.GetEncoding("us-ascii", EncoderFallback.ExceptionFallback, DecoderFallback.ReplacementFallback),
                "UNOW" or "UNOY" => new UTF8Encoding(false, true),
                _ => Encoding.GetEncoding("iso-8859-1", EncoderFallback.ExceptionFallback, DecoderFallback.ReplacementFallback),
            };
        _suffix = Encoding.ASCII.GetBytes(_o.SegmentSuffix);
        _buf = ArrayPool<byte>.Shared.Rent(64 * 1024);
    }

    public EdiDelimiters Delimiters => _d;

    /// <summary>Control number of the current interchange (ISA13 / UNB 0020).</summary>
    public string InterchangeControlNumber => _icn;

    public string GroupControlNumber => _gcn;

    public string SetControlNumber => _scn;

    // ------------------------------------------------------------ envelopes

    public void BeginInterchange()
    {
        _now = _o.Time.GetUtcNow();
        _interchangeCount = 0;
        long n = _o.ControlNumbers.Next(EdiControlLevel.Interchange);
        if (_o.Standard == EdiStandard.X12)
        {
            _icn = (n % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture);
            bool rep = string.CompareOrdinal(_o.InterchangeVersion, "00402") >= 0 && _d.Repetition != 0;
            Segment("ISA").Element("00").Element(new string(' ', 10)).Element("00").Element(new string(' ', 10))
                .Element(Pad(_o.SenderQualifier, 2)).Element(Pad(_o.SenderId, 15))
                .Element(Pad(_o.ReceiverQualifier, 2)).Element(Pad(_o.ReceiverId, 15))
                .Element(_now.ToString("yyMMdd", CultureInfo.InvariantCulture)).Element(_now.ToString("HHmm", CultureInfo.InvariantCulture));
            RawElement(rep ? _d.Repetition : (byte)'U');
            Element(_o.InterchangeVersion).Element(_icn).Element(_o.AcknowledgementRequested ? "1" : "0").Element(_o.Test ? "T" : "P");
            RawElement(_d.Component);
            EndSegment();
        }
        else
        {
            _icn = n.ToString(CultureInfo.InvariantCulture);
            if (_o.WriteServiceStringAdvice || _d != EdiDelimiters.EdifactDefault)
            {
                Ensure(16);
                _buf[_len++] = (byte)'U';
                _buf[_len++] = (byte)'N';
                _buf[_len++] = (byte)'A';
                _buf[_len++] = _d.Component;
                _buf[_len++] = _d.Element;
                _buf[_len++] = _d.Decimal == 0 ? (byte)'.' : _d.Decimal;
                _buf[_len++] = _d.Release == 0 ? (byte)' ' : _d.Release;
                _buf[_len++] = _d.Repetition == 0 ? (byte)' ' : _d.Repetition;
                _buf[_len++] = _d.Segment;
                WriteSuffix();
            }

            bool v4 = _o.SyntaxVersion == "4";
            Segment("UNB").Composite(_o.CharacterSet, _o.SyntaxVersion).Composite(_o.SenderId, _o.SenderQualifier).Composite(_o.ReceiverId, _o.ReceiverQualifier)
                .Composite(_now.ToString(v4 ? "yyyyMMdd" : "yyMMdd", CultureInfo.InvariantCulture), _now.ToString("HHmm", CultureInfo.InvariantCulture)).Element(_icn);
            if (_o.AcknowledgementRequested || _o.Test)
            {
                Element("").Element("").Element("").Element(_o.AcknowledgementRequested ? "1" : "").Element("").Element(_o.Test ? "1" : "");
            }

            EndSegment();
        }
    }

    /// <summary>Starts a functional group. For EDIFACT, pass <paramref name="functionalId"/> null to write messages without UNG.</summary>
    public void BeginGroup(string? functionalId, string version)
    {
        _groupSets = 0;
        if (functionalId == null)
        {
            _inGroup = false;
            return;
        }

        _inGroup = true;
        _interchangeCount++;
        _gcn = _o.ControlNumbers.Next(EdiControlLevel.Group).ToString(CultureInfo.InvariantCulture);
        if (_o.Standard == EdiStandard.X12)
        {
            Segment("GS").Element(functionalId).Element(_o.SenderId).Element(_o.ReceiverId)
                .Element(_now.ToString("yyyyMMdd", CultureInfo.InvariantCulture)).Element(_now.ToString("HHmm", CultureInfo.InvariantCulture))
                .Element(_gcn).Element("X").Element(version).EndSegment();
        }
        else
        {
            var parts = version.Split(':');
            Segment("UNG").Element(functionalId).Composite(_o.SenderId, _o.SenderQualifier).Composite(_o.ReceiverId, _o.ReceiverQualifier)
                .Composite(_now.ToString("yyMMdd", CultureInfo.InvariantCulture), _now.ToString("HHmm", CultureInfo.InvariantCulture))
                .Element(_gcn).Element("UN").Composite(parts).EndSegment();
        }
    }

    /// <summary>Starts a transaction set / message. <paramref name="messageIdentifier"/> for EDIFACT is e.g. "ORDERS:D:96A:UN"; for X12 ST03 (optional).</summary>
    public string BeginSet(string id, string? messageIdentifier = null)
    {
        _setSegments = 0;
        _groupSets++;
        if (!_inGroup)
        {
            _interchangeCount++;
        }

        long n = _o.ControlNumbers.Next(EdiControlLevel.Set);
        if (_o.Standard == EdiStandard.X12)
        {
            _scn = (n % 1_000_000_000).ToString("D4", CultureInfo.InvariantCulture);
            Segment("ST").Element(id).Element(_scn);
            if (!string.IsNullOrEmpty(messageIdentifier))
            {
                Element(messageIdentifier);
            }

            EndSegment();
        }
        else
        {
            _scn = n.ToString(CultureInfo.InvariantCulture);
            Segment("UNH").Element(_scn).Composite((messageIdentifier ?? id).Split(':')).EndSegment();
        }

        return _scn;
    }

    public void EndSet()
    {
        int count = _setSegments + 1;
        Segment(_o.Standard == EdiStandard.X12 ? "SE" : "UNT").Element(count.ToString(CultureInfo.InvariantCulture)).Element(_scn).EndSegment();
        _setSegments = 0;
    }

    public void EndGroup()
    {
        if (_inGroup)
        {
            Segment(_o.Standard == EdiStandard.X12 ? "GE" : "UNE").Element(_groupSets.ToString(CultureInfo.InvariantCulture)).Element(_gcn).EndSegment();
        }

        _inGroup = false;
    }

    public void EndInterchange()
    {
        Segment(_o.Standard == EdiStandard.X12 ? "IEA" : "UNZ").Element(_interchangeCount.ToString(CultureInfo.InvariantCulture)).Element(_icn).EndSegment();
        Flush();
    }

    // ------------------------------------------------------------ segments

    public EdiWriter Segment(string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if (_inSegment)
        {
            throw new EdiException($"segment {tag} started before the previous one was ended");
        }

        _inSegment = true;
        _pendingElements = 0;
        Ensure(tag.Length);
        foreach (char c in tag)
        {
            _buf[_len++] = (byte)c;
        }

        return this;
    }

    /// <summary>Adds a simple element; empty values are kept only when followed by a non-empty one.</summary>
    public EdiWriter Element(string? value)
    {
        CloseComposite();
        if (string.IsNullOrEmpty(value))
        {
            _pendingElements++;
            return this;
        }

        FlushPendingElements();
        WriteValue(value);
        return this;
    }

    public EdiWriter Element(decimal value) => Element(FormatNumber(value));

    /// <summary>Adds a composite element; trailing empty components are dropped.</summary>
    public EdiWriter Composite(params string?[] components)
    {
        ArgumentNullException.ThrowIfNull(components);
        CloseComposite();
        int last = components.Length - 1;
        while (last >= 0 && string.IsNullOrEmpty(components[last]))
        {
            last--;
        }

        if (last < 0)
        {
            _pendingElements++;
            return this;
        }

        FlushPendingElements();
        for (int i = 0; i <= last; i++)
        {
            if (i > 0)
            {
                Ensure(1);
                _buf[_len++] = _d.Component;
            }

            if (!string.IsNullOrEmpty(components[i]))
            {
                WriteValue(components[i]!);
            }
        }

        return this;
    }

    /// <summary>Adds a repeating simple element (X12 from 00402, EDIFACT syntax 4): the values joined by the repetition separator; trailing empty ones dropped.</summary>
    public EdiWriter Repeated(params string?[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return RepeatedComposite(values.Select(v => new[] { v }).ToArray());
    }

    /// <summary>Adds a repeating composite element: one array of components per repetition.</summary>
    public EdiWriter RepeatedComposite(params string?[][] repeats)
    {
        ArgumentNullException.ThrowIfNull(repeats);
        int last = repeats.Length - 1;
        while (last >= 0 && (repeats[last] == null || repeats[last].All(string.IsNullOrEmpty)))
        {
            last--;
        }

        if (last < 0)
        {
            _pendingElements++;
            return this;
        }

        bool canRepeat = _d.Repetition != 0 && (_o.Standard == EdiStandard.X12 ? string.CompareOrdinal(_o.InterchangeVersion, "00402") >= 0 : _o.SyntaxVersion == "4");
        if (last > 0 && !canRepeat)
        {
            throw new EdiException($"this interchange has no repetition separator ({_d}): repeating elements need X12 00402 or later with ISA11, or EDIFACT syntax version 4");
        }

        FlushPendingElements();
        for (int r = 0; r <= last; r++)
        {
            if (r > 0)
            {
                Ensure(1);
                _buf[_len++] = _d.Repetition;
            }

            var comps = repeats[r] ?? [];
            int lastComp = comps.Length - 1;
            while (lastComp >= 0 && string.IsNullOrEmpty(comps[lastComp]))
            {
                lastComp--;
            }

            for (int i = 0; i <= lastComp; i++)
            {
                if (i > 0)
                {
                    Ensure(1);
                    _buf[_len++] = _d.Component;
                }

                if (!string.IsNullOrEmpty(comps[i]))
                {
                    WriteValue(comps[i]!);
                }
            }
        }

        return this;
    }

    public void EndSegment()
    {
        CloseComposite();
        Ensure(1 + _suffix.Length);
        _buf[_len++] = _d.Segment;
        WriteSuffix();
        _inSegment = false;
        _setSegments++;
        if (_len > _buf.Length - 4096)
        {
            Flush();
        }
    }

    private void CloseComposite()
    {
    }

    private void FlushPendingElements()
    {
        Ensure(_pendingElements + 1);
        for (int i = 0; i <= _pendingElements; i++)
        {
            _buf[_len++] = _d.Element;
        }

        _pendingElements = 0;
    }

    private void RawElement(byte b)
    {
        FlushPendingElements();
        Ensure(1);
        _buf[_len++] = b;
    }

    private void WriteSuffix()
    {
        if (_suffix.Length > 0)
        {
            _suffix.CopyTo(_buf, _len);
            _len += _suffix.Length;
        }
    }

    private void WriteValue(string value)
    {
        int max = _enc.GetMaxByteCount(value.Length);
        if (_scratch.Length < max)
        {
            _scratch = new byte[Math.Max(max, _scratch.Length * 2)];
        }

        int n;
        try
        {
            n = _enc.GetBytes(value, _scratch);
        }
        catch (EncoderFallbackException ex)
        {
            throw new EdiException($"'{value}' cannot be written in character set {(_o.Standard == EdiStandard.X12 ? "UTF-8" : _o.CharacterSet)}", ex);
        }

        Ensure(n * 2);
        var src = _scratch.AsSpan(0, n);
        if (_d.Release == 0)
        {
            if (src.IndexOfAny(_d.Element, _d.Segment, _d.Component) >= 0 || (_d.Repetition != 0 && src.IndexOf(_d.Repetition) >= 0))
            {
                throw new EdiException($"'{value}' contains a delimiter of this interchange ({_d}); X12 has no release character, choose other delimiters");
            }

            src.CopyTo(_buf.AsSpan(_len));
            _len += n;
            return;
        }

        foreach (byte b in src)
        {
            if (_d.IsSpecial(b))
            {
                _buf[_len++] = _d.Release;
            }

            _buf[_len++] = b;
        }
    }

    private void Ensure(int extra)
    {
        if (_len + extra + 16 <= _buf.Length)
        {
            return;
        }

        Flush();
        if (extra + 16 > _buf.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(extra + 4096);
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = bigger;
        }
    }

    public void Flush()
    {
        if (_len > 0)
        {
            // a segment in progress stays in the buffer: only complete bytes are written when not in a segment
            _out.Write(_buf, 0, _len);
            _len = 0;
        }

        _out.Flush();
    }

    private static string Pad(string s, int width) => s.Length >= width ? s[..width] : s.PadRight(width);

    /// <summary>Decimal in the shortest invariant form ("12.5", "100").</summary>
    public static string FormatNumber(decimal value)
    {
        string s = value.ToString("0.############", CultureInfo.InvariantCulture);
        return s == "-0" ? "0" : s;
    }

    public void Dispose()
    {
        if (_buf.Length > 0)
        {
            if (_len > 0)
            {
                _out.Write(_buf, 0, _len);
                _len = 0;
            }

            ArrayPool<byte>.Shared.Return(_buf);
            _buf = [];
        }

        if (!_leaveOpen)
        {
            _out.Dispose();
        }
    }
}
