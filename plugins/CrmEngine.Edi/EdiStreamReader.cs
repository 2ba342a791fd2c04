using System.Text;

namespace CrmEngine.Edi;

/// <summary>
/// Pull reader over interchanges, groups and transaction sets with envelope validation
/// (control numbers, counts, duplicates, missing trailers). Streams: only the current
/// transaction set is held in memory, in a reused arena.
/// </summary>
public sealed class EdiStreamReader : IDisposable
{
    private enum State
    {
        Outside,
        InInterchange,
        InGroup,
        InSet,
    }

    private readonly EdiTokenizer _tok;
    private readonly EdiReaderOptions _options;
    private readonly Queue<(EdiItemKind Kind, object Item)> _queue = new();
    private readonly HashSet<string> _interchangeNumbers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _groupNumbers = new(StringComparer.Ordinal);
    private readonly HashSet<long> _setNumbers = [];
    private readonly HashSet<string> _setNumbersText = new(StringComparer.Ordinal);
    private EdiSegmentList? _segments;
    private State _state;
    private bool _reprocess;
    private bool _skipToEnvelope;
    private bool _currentAdded;
    private EdiInterchange? _interchange;
    private EdiGroup? _group;
    private EdiTransactionSet? _set;
    private string _groupVersion = "";
    private string _lastSetId = "";
    private byte[] _lastSetIdBytes = [];
    private byte[] _lastVersionBytes = [];
    private string _lastVersion = "";

    public EdiStreamReader(Stream stream, EdiReaderOptions? options = null)
    {
        _options = options ?? EdiReaderOptions.Default;
        _tok = new EdiTokenizer(stream, _options);
    }

    public static EdiStreamReader Open(string path, EdiReaderOptions? options = null)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        var o = options ?? new EdiReaderOptions { SourceName = path };
        return new EdiStreamReader(fs, o) { _ownsStream = fs };
    }

    private FileStream? _ownsStream;

    public EdiTokenizer Tokenizer => _tok;

    /// <summary>The interchange the last item belongs to.</summary>
    public EdiInterchange? Interchange { get; private set; }

    /// <summary>The group the last item belongs to.</summary>
    public EdiGroup? Group { get; private set; }

    /// <summary>The transaction set, valid after <see cref="EdiItemKind.TransactionSet"/> until the next <see cref="Read"/>.</summary>
    public EdiTransactionSet? TransactionSet { get; private set; }

    /// <summary>Issues about segments found outside any transaction set are reported on the group or interchange.</summary>
    public EdiItemKind Read()
    {
        while (_queue.Count == 0)
        {
            if (!_reprocess)
            {
                if (!_tok.ReadSegment())
                {
                    if (_state != State.Outside)
                    {
                        string what = (_interchange?.Standard ?? _tok.Standard) == EdiStandard.X12 ? "IEA" : "UNZ";
                        long end = _tok.Position;
                        throw _tok.Error($"truncated input: end of input inside interchange {_interchange?.ControlNumber} (no {what} trailer{(_state == State.InSet ? $", transaction set {_set?.ControlNumber} not closed" : "")})", end, _set?.Line ?? _interchange?.Line ?? 0, 0);
                    }

                    return EdiItemKind.None;
                }
            }

            if (!_reprocess)
            {
                _currentAdded = false;
            }

            _reprocess = false;
            if (_tok.Standard == EdiStandard.X12)
            {
                ProcessX12();
            }
            else
            {
                ProcessEdifact();
            }
        }

        var (kind, item) = _queue.Dequeue();
        switch (item)
        {
            case EdiInterchange i:
                Interchange = i;
                Group = null;
                TransactionSet = null;
                break;
            case EdiGroup g:
                Group = g;
                Interchange = g.Interchange;
                TransactionSet = null;
                break;
            case EdiTransactionSet s:
                TransactionSet = s;
                Group = s.Group;
                Interchange = s.Group.Interchange;
                break;
        }

        return kind;
    }

    /// <summary>True when <paramref name="raw"/> is exactly the ASCII text <paramref name="text"/> (no string created).</summary>
    private static bool SameAscii(ReadOnlySpan<byte> raw, string text)
    {
        if (raw.Length != text.Length)
        {
            return false;
        }

        for (int i = 0; i < raw.Length; i++)
        {
            if (raw[i] != text[i])
            {
                return false;
            }
        }

        return true;
    }

    private static bool Is(ReadOnlySpan<byte> tag, char a, char b, char c)
        => tag.Length == 3 && tag[0] == (byte)a && tag[1] == (byte)b && tag[2] == (byte)c;

    private static bool Is(ReadOnlySpan<byte> tag, char a, char b)
        => tag.Length == 2 && tag[0] == (byte)a && tag[1] == (byte)b;

    private string Str(int element, int component = 0)
    {
        var raw = _tok.Element(element);
        if (component > 0)
        {
            raw = EdiText.Component(raw, component, _tok.Delimiters);
        }

        return EdiText.Decode(raw, _tok.Delimiters.Release, _interchange?.Encoding ?? Encoding.Latin1).Trim();
    }

    private int? Int(int element)
    {
        var raw = _tok.Element(element).Trim((byte)' ');
        return int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v : null;
    }

    private void Issue(List<EdiIssue> target, EdiErrorKind kind, string message, bool withSegment = true)
    {
        target.Add(new EdiIssue
        {
            Kind = kind,
            Standard = _interchange?.Standard ?? _tok.Standard,
            Message = message,
            InterchangeControlNumber = _interchange?.ControlNumber,
            GroupControlNumber = _group is { IsImplicit: false } ? _group.ControlNumber : null,
            SetControlNumber = _set?.ControlNumber,
            SetId = _set?.Id,
            SegmentTag = withSegment ? Encoding.ASCII.GetString(_tok.Tag) : null,
            SegmentPosition = withSegment && _set != null ? _segments!.Count + (_currentAdded ? 0 : 1) : 0,
            ByteOffset = _tok.SegmentOffset,
            Line = _tok.SegmentLine,
        });
    }

    // ---------------------------------------------------------------- X12

    private void ProcessX12()
    {
        var tag = _tok.Tag;

        // Fast path: a content segment inside a set (envelope tags are ISA, GS, ST, SE, GE, IEA, TA1).
        if (_state == State.InSet && !(tag.Length is 2 or 3 && tag[0] is (byte)'I' or (byte)'G' or (byte)'S' or (byte)'T' && (tag.Length == 2 || tag[0] != (byte)'S')))
        {
            AddToSet();
            return;
        }

        if (_state == State.Outside && !Is(tag, 'I', 'S', 'A'))
        {
            throw _tok.Error($"expected an ISA interchange header but found segment {EdiTokenizer.Printable(tag)}", _tok.SegmentOffset, _tok.SegmentLine, _tok.SegmentColumn);
        }

        if (Is(tag, 'I', 'S', 'A'))
        {
            if (_state != State.Outside)
            {
                CloseDown(State.Outside, missing: true);
                _reprocess = true;
                return;
            }

            StartX12Interchange();
            return;
        }

        if (Is(tag, 'G', 'S'))
        {
            if (_state > State.InInterchange)
            {
                CloseDown(State.InInterchange, missing: true);
                _reprocess = true;
                return;
            }

            _skipToEnvelope = false;
            var g = new EdiGroup
            {
                Interchange = _interchange!,
                FunctionalId = Str(1),
                SenderId = Str(2),
                ReceiverId = Str(3),
                Date = Str(4),
                Time = Str(5),
                ControlNumber = Str(6),
                Version = Str(8),
                ByteOffset = _tok.SegmentOffset,
                Line = _tok.SegmentLine,
            };
            StartGroup(g);
            _groupVersion = g.Version.Length >= 6 ? g.Version[..6] : g.Version;
            return;
        }

        if (Is(tag, 'S', 'T'))
        {
            if (_state == State.InSet)
            {
                CloseDown(State.InGroup, missing: true);
                _reprocess = true;
                return;
            }

            if (_state != State.InGroup)
            {
                NotInSet(tag);
                return;
            }

            StartSet(SetId(_tok.Element(1)), Str(2), _groupVersion, Str(3));
            return;
        }

        if (Is(tag, 'S', 'E'))
        {
            if (_state != State.InSet)
            {
                NotInSet(tag);
                return;
            }

            EndSet();
            return;
        }

        if (Is(tag, 'G', 'E'))
        {
            if (_state == State.InSet)
            {
                CloseDown(State.InGroup, missing: true);
                _reprocess = true;
                return;
            }

            if (_state != State.InGroup)
            {
                NotInSet(tag);
                return;
            }

            EndGroup();
            return;
        }

        if (Is(tag, 'I', 'E', 'A'))
        {
            if (_state > State.InInterchange)
            {
                CloseDown(State.InInterchange, missing: true);
                _reprocess = true;
                return;
            }

            EndInterchange();
            return;
        }

        if (_state == State.InSet)
        {
            AddToSet();
            return;
        }

        if (Is(tag, 'T', 'A', '1') && _state == State.InInterchange)
        {
            // Interchange acknowledgement carried between ISA and GS: TA101 control, TA104 A/E/R, TA105 note.
            _interchange!.InterchangeAcknowledgements.Add((Str(1), Str(4), Str(5)));
            return;
        }

        NotInSet(tag);
    }

    private void StartX12Interchange()
    {
        var enc = EdiEncodings.X12;
        var i = new EdiInterchange
        {
            Standard = EdiStandard.X12,
            Delimiters = _tok.Delimiters,
            Encoding = enc,
            SenderQualifier = Str(5),
            SenderId = Str(6),
            ReceiverQualifier = Str(7),
            ReceiverId = Str(8),
            Date = Str(9),
            Time = Str(10),
            Version = Str(12),
            ControlNumber = Str(13),
            AcknowledgementRequested = Str(14) == "1",
            TestIndicator = Str(15),
            ByteOffset = _tok.SegmentOffset,
            Line = _tok.SegmentLine,
        };
        StartInterchange(i);
        if (i.Version is not ("00401" or "00402" or "00403" or "00404" or "00405" or "00406" or "00500" or "00501" or "00502" or "00503" or "00504" or "00505" or "00600" or "00601" or "00602" or "00700" or "00701"))
        {
            Issue(i.Issues, EdiErrorKind.UnsupportedInterchangeVersion, $"interchange version ISA12 '{i.Version}' is not supported (00401 to 00701 are)");
        }
    }

    // ---------------------------------------------------------------- EDIFACT

    private void ProcessEdifact()
    {
        var tag = _tok.Tag;

        // Fast path: a content segment inside a message (envelope tags all start with UN; UNS is content).
        if (_state == State.InSet && !(tag.Length == 3 && tag[0] == (byte)'U' && tag[1] == (byte)'N' && tag[2] != (byte)'S'))
        {
            AddToSet();
            return;
        }

        if (_state == State.Outside && !Is(tag, 'U', 'N', 'B'))
        {
            throw _tok.Error($"expected a UNB interchange header but found segment {EdiTokenizer.Printable(tag)}", _tok.SegmentOffset, _tok.SegmentLine, _tok.SegmentColumn);
        }

        if (Is(tag, 'U', 'N', 'B'))
        {
            if (_state != State.Outside)
            {
                CloseDown(State.Outside, missing: true);
                _reprocess = true;
                return;
            }

            StartEdifactInterchange();
            return;
        }

        if (Is(tag, 'U', 'N', 'G'))
        {
            if (_state > State.InInterchange)
            {
                CloseDown(State.InInterchange, missing: true);
                _reprocess = true;
                return;
            }

            _skipToEnvelope = false;
            var g = new EdiGroup
            {
                Interchange = _interchange!,
                FunctionalId = Str(1),
                SenderId = Str(2, 1),
                ReceiverId = Str(3, 1),
                Date = Str(4, 1),
                Time = Str(4, 2),
                ControlNumber = Str(5),
                Version = Str(7, 1) + Str(7, 2),
                ByteOffset = _tok.SegmentOffset,
                Line = _tok.SegmentLine,
            };
            StartGroup(g);
            return;
        }

        if (Is(tag, 'U', 'N', 'H'))
        {
            if (_state == State.InSet)
            {
                CloseDown(_group!.IsImplicit ? State.InInterchange : State.InGroup, missing: true);
                _reprocess = true;
                return;
            }

            if (_state == State.InInterchange)
            {
                var g = new EdiGroup
                {
                    Interchange = _interchange!,
                    IsImplicit = true,
                    ControlNumber = _interchange!.ControlNumber,
                    SenderId = _interchange.SenderId,
                    ReceiverId = _interchange.ReceiverId,
                    ByteOffset = _tok.SegmentOffset,
                    Line = _tok.SegmentLine,
                };
                StartGroup(g);
            }

            string version = MessageVersion();
            StartSet(SetId(EdiText.Component(_tok.Element(2), 1, _tok.Delimiters)), Str(1), version, Str(2, 5));
            return;
        }

        if (Is(tag, 'U', 'N', 'T'))
        {
            if (_state != State.InSet)
            {
                NotInSet(tag);
                return;
            }

            EndSet();
            if (_group!.IsImplicit)
            {
                _state = State.InGroup;
            }

            return;
        }

        if (Is(tag, 'U', 'N', 'E'))
        {
            if (_state == State.InSet)
            {
                CloseDown(State.InGroup, missing: true);
                _reprocess = true;
                return;
            }

            if (_state != State.InGroup || _group!.IsImplicit)
            {
                NotInSet(tag);
                return;
            }

            EndGroup();
            return;
        }

        if (Is(tag, 'U', 'N', 'Z'))
        {
            if (_state == State.InGroup && _group!.IsImplicit)
            {
                CloseImplicitGroup();
            }

            if (_state > State.InInterchange)
            {
                CloseDown(State.InInterchange, missing: true);
                _reprocess = true;
                return;
            }

            EndInterchange();
            return;
        }

        if (_state == State.InSet)
        {
            AddToSet();
            return;
        }

        NotInSet(tag);
    }

    private void StartEdifactInterchange()
    {
        string syntax = Str(1, 1);

        // Input that arrived as two-octet UCS-2 has been transcoded to UTF-8, whatever the header declares.
        var enc = _tok.InputTranscodedFrom != null ? EdiEncodings.ForSyntax("UNOW") : EdiEncodings.ForSyntax(syntax);
        var i = new EdiInterchange
        {
            Standard = EdiStandard.Edifact,
            Delimiters = _tok.Delimiters,
            HasServiceStringAdvice = _tok.HasServiceStringAdvice,
            Encoding = enc,
            CharacterSet = syntax,
            Version = Str(1, 2),
            SenderId = Str(2, 1),
            SenderQualifier = Str(2, 2),
            ReceiverId = Str(3, 1),
            ReceiverQualifier = Str(3, 2),
            Date = Str(4, 1),
            Time = Str(4, 2),
            ControlNumber = Str(5),
            AcknowledgementRequested = Str(9) == "1",
            TestIndicator = Str(11),
            ByteOffset = _tok.SegmentOffset,
            Line = _tok.SegmentLine,
        };
        StartInterchange(i);
        if (!EdiEncodings.IsSupportedSyntax(syntax))
        {
            Issue(i.Issues, EdiErrorKind.UnsupportedInterchangeVersion, $"syntax identifier '{syntax}' is not supported (UNOA, UNOB, UNOC, UNOW, UNOY are)");
        }

        if (i.Version is not ("1" or "2" or "3" or "4"))
        {
            Issue(i.Issues, EdiErrorKind.UnsupportedInterchangeVersion, $"syntax version '{i.Version}' is not supported (1 to 4 are)");
        }
    }

    // ---------------------------------------------------------------- shared

    /// <summary>UNH S009 version + release (e.g. D96A); the same string instance while it does not change.</summary>
    private string MessageVersion()
    {
        var d = _tok.Delimiters;
        var s009 = _tok.Element(2);
        var v = EdiText.Component(s009, 2, d);
        var r = EdiText.Component(s009, 3, d);
        if (_lastVersionBytes.Length == v.Length + r.Length + 1 && v.SequenceEqual(_lastVersionBytes.AsSpan(0, v.Length)) && r.SequenceEqual(_lastVersionBytes.AsSpan(v.Length + 1)))
        {
            return _lastVersion;
        }

        _lastVersionBytes = [.. v, (byte)0, .. r];
        _lastVersion = Str(2, 2) + Str(2, 3);
        return _lastVersion;
    }

    private string SetId(ReadOnlySpan<byte> raw)
    {
        if (!raw.SequenceEqual(_lastSetIdBytes))
        {
            _lastSetIdBytes = raw.ToArray();
            _lastSetId = Encoding.ASCII.GetString(raw).Trim();
        }

        return _lastSetId;
    }

    private void StartInterchange(EdiInterchange i)
    {
        _interchange = i;
        _group = null;
        _set = null;
        _state = State.InInterchange;
        _groupNumbers.Clear();
        _skipToEnvelope = false;
        string key = i.SenderId + "\u0001" + i.ControlNumber;
        if (!_interchangeNumbers.Add(key))
        {
            Issue(i.Issues, EdiErrorKind.DuplicateInterchange, $"interchange control number {i.ControlNumber} from sender {i.SenderId} was already used in this file");
        }

        _queue.Enqueue((EdiItemKind.InterchangeStart, i));
    }

    private void StartGroup(EdiGroup g)
    {
        _group = g;
        _state = State.InGroup;
        _setNumbers.Clear();
        _setNumbersText.Clear();
        if (!g.IsImplicit)
        {
            _interchange!.ActualCount++;
            if (!_groupNumbers.Add(g.ControlNumber))
            {
                Issue(g.Issues, EdiErrorKind.DuplicateGroup, $"group control number {g.ControlNumber} is not unique within interchange {_interchange.ControlNumber}");
            }
        }

        _queue.Enqueue((EdiItemKind.GroupStart, g));
    }

    private void StartSet(string id, string control, string version, string implementation)
    {
        _segments ??= new EdiSegmentList(_tok.Standard, _tok.Delimiters, _interchange!.Encoding);
        _segments.Clear();
        _segments.Standard = _tok.Standard;
        _segments.Delimiters = _tok.Delimiters;
        _segments.Encoding = _interchange!.Encoding;
        _set = new EdiTransactionSet
        {
            Group = _group!,
            Id = id,
            ControlNumber = control,
            Version = version,
            Implementation = implementation,
            Segments = _segments,
            ByteOffset = _tok.SegmentOffset,
            Line = _tok.SegmentLine,
        };
        _state = State.InSet;
        _skipToEnvelope = false;
        _group!.ActualCount++;
        if (_group.IsImplicit)
        {
            _interchange.ActualCount++;
        }

        if (id.Length == 0)
        {
            Issue(_set.Issues, EdiErrorKind.SetIdentifierInvalid, "missing transaction set identifier");
        }

        bool fresh = long.TryParse(control, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n)
            ? _setNumbers.Add(n)
            : _setNumbersText.Add(control);
        if (!fresh)
        {
            Issue(_set.Issues, EdiErrorKind.DuplicateSet, $"control number {control} is not unique within the group");
        }

        AddToSet();
    }

    private void AddToSet()
    {
        if (_segments!.Count >= _options.MaxSegmentsPerSet)
        {
            throw _tok.Error($"transaction set {_set!.ControlNumber} has more than {_options.MaxSegmentsPerSet} segments", _tok.SegmentOffset, _tok.SegmentLine, _tok.SegmentColumn);
        }

        _segments.Add(_tok);
        _currentAdded = true;
    }

    private void EndSet()
    {
        AddToSet();
        var s = _set!;
        int? declared = Int(1);
        s.DeclaredSegmentCount = declared;
        string trailer = _tok.Standard == EdiStandard.X12 ? "SE" : "UNT";
        if (declared != _segments!.Count)
        {
            Issue(s.Issues, EdiErrorKind.SetSegmentCountMismatch, $"{trailer} declares {Str(1)} segments but the set has {_segments.Count}");
        }

        if (!SameAscii(_tok.Element(2), s.ControlNumber) && Str(2) is var trailerControl && !string.Equals(trailerControl, s.ControlNumber, StringComparison.Ordinal))
        {
            Issue(s.Issues, EdiErrorKind.SetControlNumberMismatch, $"{trailer} control number '{trailerControl}' does not match header '{s.ControlNumber}'");
        }

        s.Closed = true;
        _state = State.InGroup;
        _queue.Enqueue((EdiItemKind.TransactionSet, s));
        _set = null;
    }

    private void EndGroup()
    {
        var g = _group!;
        g.DeclaredCount = Int(1);
        string control = Str(2);
        string trailer = _tok.Standard == EdiStandard.X12 ? "GE" : "UNE";
        if (g.DeclaredCount != g.ActualCount)
        {
            Issue(g.Issues, EdiErrorKind.GroupSetCountMismatch, $"{trailer} declares {Str(1)} transaction sets but the group has {g.ActualCount}");
        }

        if (!string.Equals(control, g.ControlNumber, StringComparison.Ordinal))
        {
            Issue(g.Issues, EdiErrorKind.GroupControlNumberMismatch, $"{trailer} control number '{control}' does not match header '{g.ControlNumber}'");
        }

        g.Closed = true;
        _state = State.InInterchange;
        _queue.Enqueue((EdiItemKind.GroupEnd, g));
        _group = null;
    }

    private void CloseImplicitGroup()
    {
        var g = _group!;
        g.Closed = true;
        _state = State.InInterchange;
        _queue.Enqueue((EdiItemKind.GroupEnd, g));
        _group = null;
    }

    private void EndInterchange()
    {
        var i = _interchange!;
        i.DeclaredCount = Int(1);
        string control = Str(2);
        string trailer = _tok.Standard == EdiStandard.X12 ? "IEA" : "UNZ";
        if (i.DeclaredCount != i.ActualCount)
        {
            Issue(i.Issues, EdiErrorKind.InterchangeGroupCountMismatch, $"{trailer} declares {Str(1)} {(_tok.Standard == EdiStandard.X12 ? "groups" : "groups/messages")} but the interchange has {i.ActualCount}");
        }

        if (!string.Equals(control, i.ControlNumber, StringComparison.Ordinal))
        {
            Issue(i.Issues, EdiErrorKind.InterchangeControlNumberMismatch, $"{trailer} control number '{control}' does not match header '{i.ControlNumber}'");
        }

        i.Closed = true;
        _state = State.Outside;
        _queue.Enqueue((EdiItemKind.InterchangeEnd, i));
        _interchange = null;
    }

    /// <summary>Closes open levels down to <paramref name="target"/> because a trailer is missing.</summary>
    private void CloseDown(State target, bool missing)
    {
        string tag = Encoding.ASCII.GetString(_tok.Tag);
        bool x12 = (_interchange?.Standard ?? _tok.Standard) == EdiStandard.X12;
        if (_state == State.InSet && target < State.InSet)
        {
            var s = _set!;
            if (missing)
            {
                Issue(s.Issues, EdiErrorKind.SetTrailerMissing, $"{(x12 ? "SE" : "UNT")} trailer missing: {tag} found inside the set");
            }

            s.Closed = true;
            _queue.Enqueue((EdiItemKind.TransactionSet, s));
            _set = null;
            _state = State.InGroup;
        }

        if (_state == State.InGroup && target < State.InGroup)
        {
            var g = _group!;
            if (missing && !g.IsImplicit)
            {
                Issue(g.Issues, EdiErrorKind.GroupTrailerMissing, $"{(x12 ? "GE" : "UNE")} trailer missing: {tag} found inside the group");
            }

            g.Closed = true;
            _queue.Enqueue((EdiItemKind.GroupEnd, g));
            _group = null;
            _state = State.InInterchange;
        }

        if (_state == State.InInterchange && target < State.InInterchange)
        {
            var i = _interchange!;
            if (missing)
            {
                Issue(i.Issues, EdiErrorKind.InterchangeTrailerMissing, $"{(x12 ? "IEA" : "UNZ")} trailer missing: {tag} found inside the interchange");
            }

            i.Closed = true;
            _queue.Enqueue((EdiItemKind.InterchangeEnd, i));
            _interchange = null;
            _state = State.Outside;
        }
    }

    private void NotInSet(ReadOnlySpan<byte> tag)
    {
        if (_skipToEnvelope)
        {
            return;
        }

        _skipToEnvelope = true;
        var target = _group?.Issues ?? _interchange?.Issues;
        if (target == null)
        {
            throw _tok.Error($"segment {Encoding.ASCII.GetString(tag)} outside an interchange", _tok.SegmentOffset, _tok.SegmentLine, _tok.SegmentColumn);
        }

        Issue(target, EdiErrorKind.InvalidInterchangeContent, $"segment {Encoding.ASCII.GetString(tag)} found outside a transaction set; skipped up to the next envelope segment");
    }

    public void Dispose()
    {
        _tok.Dispose();
        _ownsStream?.Dispose();
    }
}
