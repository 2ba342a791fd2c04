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
    private readonly EdiNumberRuns _setNumbers = new();
    private readonly HashSet<string> _setNumbersText = new(StringComparer.Ordinal);
    private EdiSegmentList? _segments;
    private int _segCount;
    private bool _inline;
    private int _issueMark;
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

    /// <summary>
    /// When set, each transaction set is validated by this validator while it is read (every segment straight from the
    /// tokenizer's buffer, no second pass): the set arrives with its content issues, in the order
    /// <see cref="EdiValidator.Validate(EdiTransactionSet)"/> would have added them after the reader's.
    /// </summary>
    internal EdiValidator? InlineValidator { get; init; }

    /// <summary>With <see cref="InlineValidator"/>: false leaves <see cref="EdiTransactionSet.Segments"/> empty (nobody keeps them; no copy).</summary>
    internal bool KeepSegments { get; init; } = true;

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
                if (!(_inline && _state == State.InSet ? ReadContentRun() : _tok.ReadSegment()))
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

            // Most segments: content inside a set (Process would find the same first).
            if (_state == State.InSet && RoleOf(_tok.PackedTag, _tok.Standard == EdiStandard.X12) == Role.Content)
            {
                AddToSet();
                continue;
            }

            Process();
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

    /// <summary>
    /// Inside a set validated while read: reads segments and hands the content ones straight to the validator in one loop
    /// (the reader's per-segment state in locals), until a segment the envelope must see, which is left as the current
    /// segment (true), or the end of input (false). What <see cref="AddToSet"/> would do, without its checks per segment.
    /// </summary>
    private bool ReadContentRun()
    {
        var tok = _tok;
        var validator = InlineValidator!;
        bool x12 = tok.Standard == EdiStandard.X12;
        bool keep = KeepSegments;
        int max = _options.MaxSegmentsPerSet;
        int count = _segCount;
        while (true)
        {
            if (!tok.ReadSegmentInSet())
            {
                return false;
            }

            int tag = tok.PackedTag;

            // A new interchange may have other delimiters and standard: the envelope decides (as for the limit's error).
            if (RoleOf(tag, x12) != Role.Content || count >= max || tok.IsNewInterchange)
            {
                return true;
            }

            if (keep)
            {
                _segments!.Add(tok);
            }

            _segCount = ++count;
            tok.GetCurrent(out var src, out int offset, out _, out var bounds, out int boundCount);
            validator.Step(count - 1, tag, src, offset, bounds, 0, boundCount, tok.SegmentFlags, tok.ComponentMask, tok.SegmentOffset, tok.SegmentLine);
        }
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
            SegmentPosition = withSegment && _set != null ? _segCount + (_currentAdded ? 0 : 1) : 0,
            ByteOffset = _tok.SegmentOffset,
            Line = _tok.SegmentLine,
        });
    }

    // ---------------------------------------------------------------- envelope state machine (both standards)

    /// <summary>What a segment is to the envelope: the state machine below is the same for X12 and EDIFACT.</summary>
    private enum Role
    {
        Content,
        InterchangeHeader,
        GroupHeader,
        SetHeader,
        SetTrailer,
        GroupTrailer,
        InterchangeTrailer,

        /// <summary>X12 TA1 between ISA and GS.</summary>
        InterchangeAcknowledgement,
    }

    /// <summary>The role of a segment from its packed tag (<see cref="EdiTokenizer.PackedTag"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Role RoleOf(int tag, bool x12)
    {
        if (x12)
        {
            // Envelope tags: ISA, GS, ST, SE, GE, IEA, TA1.
            return tag switch
            {
                ('I' << 16) | ('S' << 8) | 'A' => Role.InterchangeHeader,
                ('G' << 8) | 'S' => Role.GroupHeader,
                ('S' << 8) | 'T' => Role.SetHeader,
                ('S' << 8) | 'E' => Role.SetTrailer,
                ('G' << 8) | 'E' => Role.GroupTrailer,
                ('I' << 16) | ('E' << 8) | 'A' => Role.InterchangeTrailer,
                ('T' << 16) | ('A' << 8) | '1' => Role.InterchangeAcknowledgement,
                _ => Role.Content,
            };
        }

        // EDIFACT envelope tags all start with UN (UNS, the section control, is content).
        if ((tag >> 8) != (('U' << 8) | 'N'))
        {
            return Role.Content;
        }

        return (tag & 0xFF) switch
        {
            'B' => Role.InterchangeHeader,
            'G' => Role.GroupHeader,
            'H' => Role.SetHeader,
            'T' => Role.SetTrailer,
            'E' => Role.GroupTrailer,
            'Z' => Role.InterchangeTrailer,
            _ => Role.Content,
        };
    }

    private void Process()
    {
        var tag = _tok.Tag;
        bool x12 = _tok.Standard == EdiStandard.X12;
        var role = RoleOf(_tok.PackedTag, x12);

        // Fast path: a content segment inside a set.
        if (role == Role.Content && _state == State.InSet)
        {
            AddToSet();
            return;
        }

        if (_state == State.Outside && role != Role.InterchangeHeader)
        {
            throw _tok.Error($"expected {(x12 ? "an ISA" : "a UNB")} interchange header but found segment {EdiTokenizer.Printable(tag)}", _tok.SegmentOffset, _tok.SegmentLine, _tok.SegmentColumn);
        }

        // A header or trailer that arrives while a lower level is still open closes that level (its trailer is
        // missing) and is then processed again.
        State closeTo = role switch
        {
            Role.InterchangeHeader => State.Outside,
            Role.GroupHeader or Role.InterchangeTrailer => State.InInterchange,
            // A message header inside an open message of an implicit (UNG-less) group closes that group too.
            Role.SetHeader => _state == State.InSet && _group!.IsImplicit ? State.InInterchange : State.InGroup,
            Role.GroupTrailer => State.InGroup,
            _ => State.InSet,
        };
        if (role == Role.InterchangeTrailer && _state == State.InGroup && _group!.IsImplicit)
        {
            CloseImplicitGroup();
        }

        if (_state > closeTo)
        {
            CloseDown(closeTo, missing: true);
            _reprocess = true;
            return;
        }

        switch (role)
        {
            case Role.InterchangeHeader:
                if (x12)
                {
                    StartX12Interchange();
                }
                else
                {
                    StartEdifactInterchange();
                }

                return;
            case Role.GroupHeader:
                _skipToEnvelope = false;
                StartGroup(x12 ? X12Group() : EdifactGroup());
                return;
            case Role.SetHeader when _state == State.InInterchange && !x12:
                // EDIFACT messages without UNG belong to an implicit group.
                StartGroup(new EdiGroup
                {
                    Interchange = _interchange!,
                    IsImplicit = true,
                    ControlNumber = _interchange!.ControlNumber,
                    SenderId = _interchange.SenderId,
                    ReceiverId = _interchange.ReceiverId,
                    ByteOffset = _tok.SegmentOffset,
                    Line = _tok.SegmentLine,
                });
                StartSetHere(x12);
                return;
            case Role.SetHeader when _state == State.InGroup:
                StartSetHere(x12);
                return;
            case Role.SetTrailer when _state == State.InSet:
                EndSet();
                return;
            case Role.GroupTrailer when _state == State.InGroup && !_group!.IsImplicit:
                EndGroup();
                return;
            case Role.InterchangeTrailer:
                EndInterchange();
                return;
            case Role.InterchangeAcknowledgement when _state == State.InSet:
                AddToSet();
                return;
            case Role.InterchangeAcknowledgement when _state == State.InInterchange:
                // Interchange acknowledgement carried between ISA and GS: TA101 control, TA104 A/E/R, TA105 note.
                _interchange!.InterchangeAcknowledgements.Add((Str(1), Str(4), Str(5)));
                return;
            default:
                NotInSet(tag);
                return;
        }
    }

    private void StartSetHere(bool x12)
    {
        if (x12)
        {
            StartSet(SetId(_tok.Element(1)), Str(2), _groupVersion, Str(3));
        }
        else
        {
            StartSet(SetId(EdiText.Component(_tok.Element(2), 1, _tok.Delimiters)), Str(1), MessageVersion(), Str(2, 5));
        }
    }

    private EdiGroup X12Group()
    {
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
        _groupVersion = g.Version.Length >= 6 ? g.Version[..6] : g.Version;
        return g;
    }

    private EdiGroup EdifactGroup() => new()
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
        _segCount = 0;
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

        // Inline validation: its issues follow the ones above; the trailer's, found later, are put before them.
        _issueMark = _set.Issues.Count;
        _inline = InlineValidator != null && InlineValidator.Begin(_set);
        AddToSet();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void AddToSet()
    {
        if (_segCount >= _options.MaxSegmentsPerSet)
        {
            throw _tok.Error($"transaction set {_set!.ControlNumber} has more than {_options.MaxSegmentsPerSet} segments", _tok.SegmentOffset, _tok.SegmentLine, _tok.SegmentColumn);
        }

        if (KeepSegments || InlineValidator == null)
        {
            _segments!.Add(_tok);
        }

        _segCount++;
        _currentAdded = true;
        if (_inline)
        {
            _tok.GetCurrent(out var src, out int offset, out _, out var bounds, out int count);
            InlineValidator!.Step(_segCount - 1, _tok.PackedTag, src, offset, bounds, 0, count, _tok.SegmentFlags, _tok.ComponentMask, _tok.SegmentOffset, _tok.SegmentLine);
        }
    }

    /// <summary>
    /// A set is complete (its trailer read or found missing): with inline validation, the reader's issues about the trailer
    /// go before the content issues, the validator closes the structure, and the per-set issue limit is applied as if the
    /// validator had run after the reader. Without a definition the validator adds its "not supported" issue now.
    /// </summary>
    private void FinishSet(EdiTransactionSet s, int trailerIssuesFrom)
    {
        s.SegmentsRead = _segCount;
        if (InlineValidator == null)
        {
            return;
        }

        var issues = s.Issues;
        if (!_inline)
        {
            InlineValidator.Validate(s);
            return;
        }

        _inline = false;
        int trailer = issues.Count - trailerIssuesFrom;
        if (trailer > 0 && trailerIssuesFrom > _issueMark)
        {
            var moved = issues.GetRange(trailerIssuesFrom, trailer);
            issues.RemoveRange(trailerIssuesFrom, trailer);
            issues.InsertRange(_issueMark, moved);
        }

        InlineValidator.End();

        // The validator stops at MaxIssuesPerSet counting what is already there: the trailer issues it did not see yet
        // take the place of its last ones.
        int max = InlineValidator.MaxIssuesPerSet;
        int firstContent = _issueMark + trailer;
        if (issues.Count > max && issues.Count - firstContent > 0)
        {
            int drop = Math.Min(issues.Count - max, issues.Count - firstContent);
            issues.RemoveRange(issues.Count - drop, drop);
        }
    }

    private void EndSet()
    {
        AddToSet();
        var s = _set!;
        int trailerIssuesFrom = s.Issues.Count;
        int? declared = Int(1);
        s.DeclaredSegmentCount = declared;
        string trailer = _tok.Standard == EdiStandard.X12 ? "SE" : "UNT";
        if (declared != _segCount)
        {
            Issue(s.Issues, EdiErrorKind.SetSegmentCountMismatch, $"{trailer} declares {Str(1)} segments but the set has {_segCount}");
        }

        if (!SameAscii(_tok.Element(2), s.ControlNumber) && Str(2) is var trailerControl && !string.Equals(trailerControl, s.ControlNumber, StringComparison.Ordinal))
        {
            Issue(s.Issues, EdiErrorKind.SetControlNumberMismatch, $"{trailer} control number '{trailerControl}' does not match header '{s.ControlNumber}'");
        }

        FinishSet(s, trailerIssuesFrom);
        s.Closed = true;
        _state = State.InGroup;
        _queue.Enqueue((EdiItemKind.TransactionSet, s));
        _set = null;
    }

    private void EndGroup()
    {
        var g = _group!;
        bool x12 = _tok.Standard == EdiStandard.X12;
        g.DeclaredCount = CheckTrailer(g.Issues, x12 ? "GE" : "UNE", "transaction sets", "group", g.ActualCount, g.ControlNumber, EdiErrorKind.GroupSetCountMismatch, EdiErrorKind.GroupControlNumberMismatch);
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
        bool x12 = _tok.Standard == EdiStandard.X12;
        i.DeclaredCount = CheckTrailer(i.Issues, x12 ? "IEA" : "UNZ", x12 ? "groups" : "groups/messages", "interchange", i.ActualCount, i.ControlNumber, EdiErrorKind.InterchangeGroupCountMismatch, EdiErrorKind.InterchangeControlNumberMismatch);
        i.Closed = true;
        _state = State.Outside;
        _queue.Enqueue((EdiItemKind.InterchangeEnd, i));
        _interchange = null;
    }

    /// <summary>Group and interchange trailers: element 1 is the count of what the level holds, element 2 repeats the header's control number. Returns the declared count.</summary>
    private int? CheckTrailer(List<EdiIssue> issues, string trailer, string counted, string level, int actual, string headerControl, EdiErrorKind countMismatch, EdiErrorKind controlMismatch)
    {
        int? declared = Int(1);
        if (declared != actual)
        {
            Issue(issues, countMismatch, $"{trailer} declares {Str(1)} {counted} but the {level} has {actual}");
        }

        string control = Str(2);
        if (!string.Equals(control, headerControl, StringComparison.Ordinal))
        {
            Issue(issues, controlMismatch, $"{trailer} control number '{control}' does not match header '{headerControl}'");
        }

        return declared;
    }

    /// <summary>Closes open levels down to <paramref name="target"/> because a trailer is missing.</summary>
    private void CloseDown(State target, bool missing)
    {
        string tag = Encoding.ASCII.GetString(_tok.Tag);
        bool x12 = (_interchange?.Standard ?? _tok.Standard) == EdiStandard.X12;
        if (_state == State.InSet && target < State.InSet)
        {
            var s = _set!;
            int trailerIssuesFrom = s.Issues.Count;
            if (missing)
            {
                Issue(s.Issues, EdiErrorKind.SetTrailerMissing, $"{(x12 ? "SE" : "UNT")} trailer missing: {tag} found inside the set");
            }

            FinishSet(s, trailerIssuesFrom);
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
