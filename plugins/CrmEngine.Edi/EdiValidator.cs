using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;

namespace CrmEngine.Edi;

/// <summary>
/// The one generic content validator: walks a transaction set against its <see cref="EdiMessageDefinition"/>
/// (segment order, loops, usage, max use, loop repeats) and checks every element against the segment
/// dictionary (usage, type, length, code values). Allocation-free while the input is valid.
/// </summary>
public sealed class EdiValidator
{
    private static readonly SearchValues<byte> NotDigits = SearchValues.Create("0123456789"u8);
    private static readonly SearchValues<byte> PlainAscii = SearchValues.Create(Enumerable.Range(0x20, 0x5F).Select(i => (byte)i).ToArray());
    private readonly EdiDefinitions _definitions;
    private Frame[] _frames = new Frame[16];
    private int _depth;
    private HashSet<string>? _hlIds;
    private bool _edifact;
    private bool _asciiOnly;
    private bool _x12;
    private bool _x12Basic;
    private EdiMessageDefinition? _lastDef;
    private EdiStandard _lastStandard;
    private string? _lastVersion;
    private string? _lastId;
    private int _lastGeneration = -1;
    private int _rep;
    private bool _plain;
    private SearchValues<byte> _special = SearchValues.Create(":"u8);
    private EdiDelimiters _specialFor;

    private struct Frame
    {
        public EdiStructureEntry[] Entries;
        public int[] Counts;
        public int Index;
        public string? LoopId;
        public EdiNode? Node;
        public EdiLevel Level;

        /// <summary>The level's trigger tags and tag filter, kept in the frame (one load less per segment).</summary>
        public int[] Tags;
        public ulong Filter;
    }

    public EdiValidator(EdiDefinitions? definitions = null)
    {
        _definitions = definitions ?? EdiDefinitions.Default;
    }

    public EdiDefinitions Definitions => _definitions;

    /// <summary>
    /// X12 has no character-set field: when the partner agreement declares the basic character set, data outside it
    /// (lower case letters, % @ [ ] _ { } \\ | &lt; &gt; # $, non-ASCII) is InvalidCharacter (AK403/IK403 6).
    /// </summary>
    public bool X12BasicCharacterSet { get; init; }

    private static readonly SearchValues<byte> X12Basic = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"&'()*+,-./:;?="u8);

    /// <summary>Most issues recorded per transaction set (the rest are counted in the last one).</summary>
    public int MaxIssuesPerSet { get; init; } = 500;

    private EdiTransactionSet _set = null!;
    private List<EdiIssue> _issues = null!;
    private int _cur;
    private int _curTag;
    private long _curOffset;
    private int _curLine;
    private byte[] _curData = [];
    private int _curDataStart;
    private int[] _curBounds = [];
    private int _curBoundsStart;
    private int _curBoundCount;
    private int _curFlags;
    private long _curComponentMask = -1;
    private EdiDelimiters _delims;
    private Encoding _encoding = Encoding.ASCII;

    // Non-ASCII text is measured in bytes and allowed (ISO 8859-1 and the like, not UTF-8, not UNOA/UNOB): the quick checks may take it.
    private bool _byteText;
    private EdiNode? _root;

    /// <summary>Validates the content of <paramref name="set"/>, adding issues to <see cref="EdiTransactionSet.Issues"/>.</summary>
    public void Validate(EdiTransactionSet set) => Validate(set, buildTree: false);

    /// <summary>Validates and, when <paramref name="buildTree"/> is set, returns the set as a tree of loops / segment groups (null when the set has no definition).</summary>
    public EdiNode? Validate(EdiTransactionSet set, bool buildTree)
    {
        ArgumentNullException.ThrowIfNull(set);
        var def = Find(set);
        if (def == null)
        {
            bool version = _definitions.HasVersion(set.Standard, set.Version);
            set.Issues.Add(new EdiIssue
            {
                Kind = EdiErrorKind.SetNotSupported,
                Standard = set.Standard,
                Message = version
                    ? $"{(set.Standard == EdiStandard.X12 ? "transaction set" : "message")} {set.Id} is not supported in version {set.Version}"
                    : $"version '{set.Version}' is not supported for {set.Id} (supported: {string.Join(", ", _definitions.Messages.Where(m => m.Standard == set.Standard).SelectMany(m => m.Versions).Distinct().Order(StringComparer.Ordinal))})",
                InterchangeControlNumber = set.Interchange.ControlNumber,
                GroupControlNumber = set.Group.IsImplicit ? null : set.Group.ControlNumber,
                SetControlNumber = set.ControlNumber,
                SetId = set.Id,
                SegmentPosition = 1,
                SegmentTag = set.Standard == EdiStandard.X12 ? "ST" : "UNH",
                ByteOffset = set.ByteOffset,
                Line = set.Line,
            });
            return null;
        }

        return Run(set, def, buildTree);
    }

    public void Validate(EdiTransactionSet set, EdiMessageDefinition definition) => Run(set, definition, false);

    /// <summary>The definition of a set; the last one is reused while the reader hands out the same version and id strings.</summary>
    private EdiMessageDefinition? Find(EdiTransactionSet set)
    {
        var standard = set.Standard;
        int generation = _definitions.Generation;
        if (_lastDef != null && generation == _lastGeneration && standard == _lastStandard
            && ReferenceEquals(set.Version, _lastVersion) && ReferenceEquals(set.Id, _lastId))
        {
            return _lastDef;
        }

        var def = _definitions.FindMessage(standard, set.Version, set.Id);
        _lastDef = def;
        _lastGeneration = _definitions.Generation;
        _lastStandard = standard;
        _lastVersion = set.Version;
        _lastId = set.Id;
        return def;
    }

    private EdiNode? Run(EdiTransactionSet set, EdiMessageDefinition definition, bool buildTree)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(definition);
        Begin(set, definition, buildTree);
        var segs = set.Segments;
        for (int i = 0; i < segs.Count; i++)
        {
            segs.GetRaw(i, out var data, out int dataStart, out var bounds, out int boundsStart, out int boundCount, out int tag, out int flags, out long offset, out int line);
            Step(i, tag, data, dataStart, bounds, boundsStart, boundCount, flags, -1, offset, line);
            _frames[_depth - 1].Node?.Children.Add(new EdiNode(null, i));
        }

        return End();
    }

    /// <summary>
    /// Starts validating <paramref name="set"/> segment by segment (the reader's inline path: <see cref="Step"/> for each
    /// segment as it is read, then <see cref="End"/>). False, with nothing started, when the set has no definition.
    /// </summary>
    internal bool Begin(EdiTransactionSet set)
    {
        var def = Find(set);
        if (def == null)
        {
            return false;
        }

        Begin(set, def, false);
        return true;
    }

    private void Begin(EdiTransactionSet set, EdiMessageDefinition definition, bool buildTree)
    {
        _set = set;
        _issues = set.Issues;
        var segs = set.Segments;
        _delims = segs.Delimiters;
        _encoding = segs.Encoding;
        _edifact = set.Standard == EdiStandard.Edifact;
        _x12 = !_edifact;
        _x12Basic = _x12 && X12BasicCharacterSet;
        _asciiOnly = _edifact && set.Interchange.CharacterSet is "UNOA" or "UNOB";
        _byteText = !_asciiOnly && _encoding is not UTF8Encoding;
        if (_specialFor != _delims)
        {
            var dl = _delims;
            _specialFor = dl;
            var specials = new[] { dl.Component, dl.Repetition, dl.Release }.Where(b => b != 0).Distinct().ToArray();
            _special = SearchValues.Create(specials);
        }

        _hlIds?.Clear();
        _depth = 0;
        _cur = -1;
        _root = buildTree ? new EdiNode(definition.Id, -1) : null;
        Push(definition.EntryLevel, null, 0);
    }

    /// <summary>
    /// One segment of the set begun with <see cref="Begin(EdiTransactionSet)"/>: placed in the structure and its elements
    /// checked. Its bytes are data[dataStart..], its element bounds bounds[boundsStart..+boundCount) (relative to dataStart);
    /// <paramref name="componentMask"/> is the tokenizer's <see cref="EdiTokenizer.ComponentMask"/> (-1 when not known).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal void Step(int index, int tag, byte[] data, int dataStart, int[] bounds, int boundsStart, int boundCount, int flags, long componentMask, long offset, int line)
    {
        _cur = index;
        _curTag = tag;
        _curOffset = offset;
        _curLine = line;

        // The same arrays segment after segment: skip the GC write barrier of storing them again.
        if (!ReferenceEquals(_curData, data))
        {
            _curData = data;
        }

        if (!ReferenceEquals(_curBounds, bounds))
        {
            _curBounds = bounds;
        }

        _curComponentMask = componentMask;
        _curDataStart = dataStart;
        _curBoundsStart = boundsStart;
        _curBoundCount = boundCount;
        _curFlags = flags;
        Place(tag);
    }

    /// <summary>End of set: whatever is still open must have had its mandatory entries. Returns the tree when one was built.</summary>
    internal EdiNode? End()
    {
        bool trailerMissing = _issues.Exists(i => i.Kind == EdiErrorKind.SetTrailerMissing);
        while (_depth > 0)
        {
            ref var f = ref _frames[_depth - 1];
            CheckMissing(ref f, f.Index, f.Entries.Length, trailerMissing);
            _depth--;
        }

        _set = null!;
        _issues = null!;
        _curData = [];
        var root = _root;
        _root = null;
        return root;
    }

    private ReadOnlySpan<byte> CurrentData => new(_curData, _curDataStart, _curBounds[_curBoundsStart + _curBoundCount - 1] - 1);

    private ReadOnlySpan<int> CurrentBounds => new(_curBounds, _curBoundsStart, _curBoundCount);

    /// <summary>Raw element <paramref name="element"/> (0 = tag) of the current segment, empty when absent.</summary>
    private ReadOnlySpan<byte> CurrentElement(int element)
    {
        if ((uint)element >= (uint)(_curBoundCount - 1))
        {
            return default;
        }

        int s = _curBounds[_curBoundsStart + element];
        int e = _curBounds[_curBoundsStart + element + 1] - 1;
        return new ReadOnlySpan<byte>(_curData, _curDataStart + s, e - s);
    }

    /// <summary>Opens a level; <paramref name="trigger"/> is the use count of its entry 0 (1 for a loop: its trigger was just read).</summary>
    private void Push(EdiLevel level, string? loopId, int trigger)
    {
        var entries = level.Entries;
        if (_depth == _frames.Length)
        {
            Array.Resize(ref _frames, _depth * 2);
        }

        ref var f = ref _frames[_depth++];
        if (f.Counts == null || f.Counts.Length < entries.Length)
        {
            f.Counts = new int[Math.Max(entries.Length, 8)];
        }
        else
        {
            // Levels are short: a plain loop instead of a call to clear them.
            var counts = f.Counts;
            for (int k = 0; k < entries.Length && k < counts.Length; k++)
            {
                counts[k] = 0;
            }
        }

        f.Counts[0] = trigger;

        // A frame is mostly pushed again with the level it had (the next repeat of the same loop): storing the same
        // references again would cost a GC write barrier each.
        if (!ReferenceEquals(f.Level, level))
        {
            f.Entries = entries;
            f.Level = level;
            f.Tags = level.Tags;
            f.LoopId = loopId;
        }

        f.Filter = level.Filter;
        f.Index = 0;
        if (_root == null)
        {
            if (f.Node != null)
            {
                f.Node = null;
            }
        }
        else if (_depth == 1)
        {
            f.Node = _root;
        }
        else
        {
            f.Node = new EdiNode(loopId, -1);
            _frames[_depth - 2].Node!.Children.Add(f.Node);
        }
    }

    private void Place(int tag)
    {
        // Most segments repeat the current entry of the innermost level or are its next one: what the search below would
        // find first there (a loop's trigger, entry 0, is left to the level above, as the search does).
        ref var inner = ref _frames[_depth - 1];
        int at = inner.Index;
        var innerTags = inner.Tags;
        int hit = (uint)at < (uint)innerTags.Length && innerTags[at] == tag && (at > 0 || _depth == 1) ? at
            : (uint)(at + 1) < (uint)innerTags.Length && innerTags[at + 1] == tag ? at + 1
            : -1;
        ulong bit = hit >= 0 ? 0 : EdiLevel.FilterBit(tag);
        for (int d = _depth - 1; d >= 0; d--)
        {
            ref var f = ref _frames[d];
            var level = f.Level;
            int j = hit;
            if (j < 0)
            {
                if ((f.Filter & bit) == 0)
                {
                    continue;
                }

                int from = d > 0 ? Math.Max(f.Index, 1) : f.Index;
                j = IndexOf(f.Tags, tag, from);
                if (j < 0)
                {
                    continue;
                }
            }

            var entries = f.Entries;

            // Close the loops above: their remaining mandatory entries are missing. The current entry of a loop frame has
            // been used (a frame starts at its trigger), so only the entries after it are looked at; no call when none is mandatory.
            while (_depth - 1 > d)
            {
                ref var top = ref _frames[_depth - 1];
                int after = top.Counts[top.Index] != 0 ? top.Index + 1 : top.Index;
                if (top.Level.NextMandatory[after] < top.Entries.Length)
                {
                    CheckMissing(ref top, after, top.Entries.Length, false);
                }

                _depth--;
            }

            // Most segments skip no mandatory entry: no call then.
            int skipFrom = f.Counts[f.Index] != 0 ? f.Index + 1 : f.Index;
            if (level.NextMandatory[skipFrom] < j)
            {
                CheckMissing(ref f, skipFrom, j, false);
            }

            f.Index = j;
            var e = entries[j];
            EdiSegmentDefinition segment;
            int count = ++f.Counts[j];
            if (e.IsLoop)
            {
                if (count > e.MaxUse)
                {
                    SegmentIssue(EdiErrorKind.LoopOverMaximum, $"loop {e.Id} repeats more than {e.MaxUse} times", e.Id);
                }

                Push(e.ChildLevel, e.Id, 1);
                var trigger = e.ChildArray![0];
                while (trigger.IsLoop)
                {
                    Push(trigger.ChildLevel, trigger.Id, 1);
                    trigger = trigger.ChildArray![0];
                }

                segment = trigger.Segment!;
            }
            else
            {
                if (count > e.MaxUse)
                {
                    SegmentIssue(EdiErrorKind.SegmentOverMaximum, $"segment {e.Id} used more than {e.MaxUse} times{(f.LoopId != null ? $" in loop {f.LoopId}" : "")}", f.LoopId);
                }

                segment = e.Segment!;
            }

            ValidateElements(segment);
            return;
        }

        NotPlaceable(tag);
    }

    /// <summary>A segment the walk cannot place: out of sequence, unknown, or not expected here (out of line: rare).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void NotPlaceable(int tag)
    {
        string tagText = EdiTag.Unpack(tag);
        for (int d = _depth - 1; d >= 0; d--)
        {
            ref var f = ref _frames[d];
            for (int k = 0; k < f.Index; k++)
            {
                if (f.Entries[k].TriggerTag == tag)
                {
                    SegmentIssue(EdiErrorKind.SegmentOutOfSequence, $"segment {tagText} is not in the defined sequence here", f.LoopId);
                    return;
                }
            }
        }

        if (_definitions.FindSegment(_set.Standard, _set.Version, tagText) is null)
        {
            SegmentIssue(tag <= 0 || !IsTag(tagText) ? EdiErrorKind.UnrecognizedSegment : EdiErrorKind.SegmentNotInSet,
                tag <= 0 || !IsTag(tagText) ? $"'{tagText}' is not a segment identifier" : $"segment {tagText} is not defined in {_set.Id}", _frames[_depth - 1].LoopId);
        }
        else
        {
            SegmentIssue(EdiErrorKind.UnexpectedSegment, $"segment {tagText} is not expected at this position of {_set.Id}", _frames[_depth - 1].LoopId);
        }
    }

    /// <summary>Values are short (a few bytes): a plain loop is cheaper than a vectorized search call.</summary>
    private static bool Has(ReadOnlySpan<byte> value, byte b)
    {
        if (value.Length > 16)
        {
            return value.IndexOf(b) >= 0;
        }

        foreach (byte x in value)
        {
            if (x == b)
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasDigit(ReadOnlySpan<byte> value)
    {
        foreach (byte x in value)
        {
            if ((uint)(x - (byte)'0') <= 9)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Linear search of a short tag array (a structure level rarely has more than 20 entries; the match is usually the first or second).</summary>
    private static int IndexOf(int[] tags, int tag, int from)
    {
        for (int k = from; k < tags.Length; k++)
        {
            if (tags[k] == tag)
            {
                return k;
            }
        }

        return -1;
    }

    private static bool IsTag(string tag)
    {
        foreach (char c in tag)
        {
            if (!char.IsAsciiLetterUpper(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return tag.Length is 2 or 3;
    }

    private void CheckMissing(ref Frame f, int from, int to, bool trailerMissing)
    {
        var next = f.Level.NextMandatory;
        for (int k = next[from]; k < to; k = next[k + 1])
        {
            var e = f.Entries[k];
            if (f.Counts[k] == 0)
            {
                if (trailerMissing && !e.IsLoop && e.Segment!.Tag is "SE" or "UNT")
                {
                    continue;
                }

                SegmentIssue(EdiErrorKind.MandatorySegmentMissing,
                    e.IsLoop ? $"mandatory loop {e.Id} (segment {EdiTag.Unpack(e.TriggerTag)}) is missing" : $"mandatory segment {e.Id} is missing",
                    f.LoopId, EdiTag.Unpack(e.TriggerTag));
            }
        }
    }

    private bool Full => _issues.Count >= MaxIssuesPerSet;

    private void SegmentIssue(EdiErrorKind kind, string message, string? loop, string? tag = null)
    {
        if (Full)
        {
            return;
        }

        _issues.Add(new EdiIssue
        {
            Kind = kind,
            Standard = _set.Standard,
            Message = message,
            InterchangeControlNumber = _set.Interchange.ControlNumber,
            GroupControlNumber = _set.Group.IsImplicit ? null : _set.Group.ControlNumber,
            SetControlNumber = _set.ControlNumber,
            SetId = _set.Id,
            SegmentPosition = _cur + 1,
            SegmentTag = tag ?? EdiTag.Unpack(_curTag),
            LoopId = loop,
            ByteOffset = _curOffset,
            Line = _curLine,
        });
    }

    private void ElementIssue(EdiErrorKind kind, string message, EdiElementDefinition? def, int element, int component, ReadOnlySpan<byte> bad)
    {
        if (Full)
        {
            return;
        }

        _issues.Add(new EdiIssue
        {
            Kind = kind,
            Standard = _set.Standard,
            Message = message,
            InterchangeControlNumber = _set.Interchange.ControlNumber,
            GroupControlNumber = _set.Group.IsImplicit ? null : _set.Group.ControlNumber,
            SetControlNumber = _set.ControlNumber,
            SetId = _set.Id,
            SegmentPosition = _cur + 1,
            SegmentTag = EdiTag.Unpack(_curTag),
            LoopId = _frames[_depth - 1].LoopId,
            ElementPosition = element,
            ComponentPosition = component,
            Repetition = _rep,
            ElementReference = def?.Reference,
            BadValue = bad.IsEmpty ? null : EdiText.Decode(bad[..Math.Min(bad.Length, 99)], _delims.Release, _encoding),
            ByteOffset = _curOffset,
            Line = _curLine,
        });
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void ValidateElements(EdiSegmentDefinition def)
    {
        // Most segments: printable ASCII without release characters (flags 0 from the tokenizer's pass), else segments the
        // pass read with their component positions known when they have any (release characters, ISO 8859-1 text), and
        // nothing wrong in them. Anything else, or anything the all-or-nothing check does not pass, goes the exact way, which reports.
        var plan = def.Plan;
        int flags = _curFlags;
        if (!_x12Basic && !GeneralPathOnly
            && (flags == 0 || (flags == EdiTokenizer.SegmentFlagSpecial ? _delims.Repetition == 0 && _curComponentMask >= 0 : QuickFlags(flags)))
            && PlainSegmentValid(plan, (flags & EdiTokenizer.SegmentFlagSpecial) == 0 ? 0 : (ulong)_curComponentMask))
        {
            if (_x12 && plan.IsHl)
            {
                CheckHierarchy();
            }

            return;
        }

        ValidateElementsExact(def);
    }

    /// <summary>
    /// The quick check can take a segment with these tokenizer flags: component separators at known places (no repetition
    /// separator), release characters found by the vector pass, non-ASCII text only where it is measured in bytes and
    /// without control characters.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private bool QuickFlags(int flags)
        => flags < EdiTokenizer.SegmentFlagsAll
            && ((flags & EdiTokenizer.SegmentFlagSpecial) == 0 || (_delims.Repetition == 0 && _curComponentMask >= 0))
            && ((flags & EdiTokenizer.SegmentFlagNotPlain) == 0 || (_byteText && CurrentData.IndexOfAnyInRange((byte)0, (byte)0x1F) < 0));

    /// <summary>
    /// True when every element of a plain segment (see <see cref="ValidateElements"/>) passes its quick check, nothing
    /// mandatory is absent, no element is beyond the definition and the syntax notes hold: then there is nothing to report.
    /// <paramref name="mask"/> has a bit per component separator (bit 0 = the segment's first byte). Out of line, with
    /// few live values, so the walk's frame stays small.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private bool PlainSegmentValid(SegmentPlan plan, ulong mask)
    {
        // The flat check: segments of up to 16 elements and 63 bytes with 64 bytes readable from their start and 18 bounds
        // from theirs (the tokenizer's buffer nearly always). All lengths, presence, mandatory and extra elements at once on
        // two vectors of bounds; then only the elements that need their bytes looked at, numbers on a digit bit mask.
        int count = _curBoundCount - 2;
        int[] boundsArray = _curBounds;
        int boundsStart = _curBoundsStart;
        byte[] data = _curData;
        int dataStart = _curDataStart;
        if ((uint)count > 16 || boundsArray.Length - boundsStart < 18 || data.Length - dataStart < 64 || !Vector256.IsHardwareAccelerated
            || (_curFlags & EdiTokenizer.SegmentFlagRelease) != 0)
        {
            return PlainSegmentValidLoop(plan, mask);
        }

        ref int b = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(boundsArray), boundsStart);
        if (plan.LastMandatoryPosition > count)
        {
            return false;
        }

        if (Unsafe.Add(ref b, count + 1) > 64)
        {
            return PlainSegmentValidLoop(plan, mask); // bounds[count + 1] is the length + 1: the bit masks need fewer than 64 bytes
        }

        // Lengths of positions 1-16 (lane k = position k + 1); lanes beyond the segment hold stale bounds and are masked off.
        var one = Vector256<int>.One;
        var lenLow = Vector256.LoadUnsafe(ref b, 2) - Vector256.LoadUnsafe(ref b, 1) - one;
        var lenHigh = Vector256.LoadUnsafe(ref b, 10) - Vector256.LoadUnsafe(ref b, 9) - one;
        uint valid = (1u << count) - 1;
        uint present = ~(Vector256.Equals(lenLow, Vector256<int>.Zero).ExtractMostSignificantBits()
            | (Vector256.Equals(lenHigh, Vector256<int>.Zero).ExtractMostSignificantBits() << 8)) & valid;
        uint bad = (Vector256.LessThan(lenLow, plan.MinLow) | Vector256.GreaterThan(lenLow, plan.MaxLow)).ExtractMostSignificantBits()
            | ((Vector256.LessThan(lenHigh, plan.MinHigh) | Vector256.GreaterThan(lenHigh, plan.MaxHigh)).ExtractMostSignificantBits() << 8);
        if (((bad & present) | (plan.MandatoryBits & ~present)) != 0)
        {
            return false;
        }

        // Text elements are done unless components could hide in them.
        uint todo = present & (mask == 0 ? plan.ContentBits : uint.MaxValue);
        if (todo != 0 && !PlainContentValid(plan, mask, todo, ref b, ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(data), dataStart), data.Length - dataStart))
        {
            return false;
        }

        return !plan.HasRules || (plan.RuleMasks is { } rules && RulesHold(rules, (ulong)present << 1));
    }

    /// <summary>
    /// The elements of a flat-checked segment (bit k of <paramref name="todo"/> = position k + 1) whose bytes need a look:
    /// code values, numbers (on a bit mask of the segment's digits: no byte loop), dates and times, composites, and no
    /// component separator inside a simple element.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool PlainContentValid(SegmentPlan plan, ulong mask, uint todo, ref int b, ref byte seg, int room)
    {
        ulong digits = 0;
        if (plan.NeedsDigits)
        {
            var v30 = Vector256.Create((byte)'0');
            var v09 = Vector256.Create((byte)9);
            digits = Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref seg) - v30, v09).ExtractMostSignificantBits()
                | ((ulong)Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref seg, 32) - v30, v09).ExtractMostSignificantBits() << 32);
        }

        ref ElementCheck c0 = ref MemoryMarshal.GetArrayDataReference(plan.Checks);
        bool decimals = _edifact;
        _plain = (_curFlags & EdiTokenizer.SegmentFlagNotPlain) == 0;
        do
        {
            int k = System.Numerics.BitOperations.TrailingZeroCount(todo);
            todo &= todo - 1;
            int start = Unsafe.Add(ref b, k + 1);
            int length = Unsafe.Add(ref b, k + 2) - 1 - start;
            ref ElementCheck c = ref Unsafe.Add(ref c0, k);
            ulong inElement = (mask >> start) & ((1UL << length) - 1);
            QuickOp op = c.Op;
            if (op == QuickOp.Composite)
            {
                if (!FlatComposite(ref seg, start, length, room, in c, decimals, inElement, digits))
                {
                    return false;
                }

                continue;
            }

            if (inElement != 0)
            {
                return false;
            }

            switch (op)
            {
                case QuickOp.Text:
                    break;
                case QuickOp.TextCodes:
                    if (!HasCode(ref Unsafe.Add(ref seg, start), length, room - start, in c))
                    {
                        return false;
                    }

                    break;
                case QuickOp.Number:
                    if (!FlatNumber(ref seg, start, length, digits, in c, decimals || c.Real))
                    {
                        return false;
                    }

                    break;
                case QuickOp.Other:
                    if (Check(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start), length), c.Definition) != NoError)
                    {
                        return false;
                    }

                    break;
                default:
                    return false;
            }
        }
        while (todo != 0);

        return true;
    }

    /// <summary>
    /// Every component of a printable composite seg[start..start+length) passes its check and none is missing;
    /// <paramref name="separators"/> has a bit per component separator (bit 0 = the composite's first byte). With
    /// <paramref name="flat"/> numbers are checked on the segment's digit bit mask <paramref name="digits"/>, else byte by byte.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool FlatComposite(ref byte seg, int start, int length, int room, in ElementCheck ed, bool decimals, ulong separators, ulong digits, bool flat = true, byte release = 0)
    {
        var comps = ed.Components;
        int c = 0;
        int p = 0;
        while (true)
        {
            int end = separators == 0 ? length : System.Numerics.BitOperations.TrailingZeroCount(separators);
            separators &= separators - 1;
            if (c == comps.Length)
            {
                return false;
            }

            ref readonly var cc = ref comps[c++];
            int n = end - p;
            if (n == 0)
            {
                if (cc.Mandatory)
                {
                    return false;
                }
            }
            else if (release != 0 && Has(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start + p), n), release))
            {
                if (!EscapedTextFits(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start + p), n), release, in cc))
                {
                    return false;
                }
            }
            else
            {
                bool ok = cc.Op switch
                {
                    QuickOp.Text => n >= cc.MinLength && n <= cc.MaxLength,
                    QuickOp.TextCodes => n >= cc.MinLength && n <= cc.MaxLength && HasCode(ref Unsafe.Add(ref seg, start + p), n, room - start - p, in cc),
                    QuickOp.Number => flat
                        ? FlatNumber(ref seg, start + p, n, digits, in cc, decimals || cc.Real)
                        : QuickNumber(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start + p), n), in cc, decimals || cc.Real),
                    QuickOp.Other => Check(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start + p), n), cc.Definition) == NoError,
                    _ => false,
                };
                if (!ok)
                {
                    return false;
                }
            }

            if (end >= length)
            {
                return c >= ed.LastMandatoryComponent;
            }

            p = end + 1;
        }
    }

    /// <summary>
    /// <see cref="QuickNumber"/> on the segment's digit bit mask: after an optional sign, at most one non-digit, which must be an
    /// allowed decimal mark; the digit count within the length; code values.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool FlatNumber(ref byte seg, int start, int length, ulong digits, in ElementCheck c, bool decimalAllowed)
    {
        ulong bits = ((1UL << length) - 1) << start;
        ulong other = bits & ~digits;
        if (other != 0)
        {
            byte first = Unsafe.Add(ref seg, start);
            if (first == (byte)'-' || first == (byte)'+')
            {
                other &= other - 1; // the sign is the lowest non-digit
            }

            if (other != 0)
            {
                byte mark = Unsafe.Add(ref seg, System.Numerics.BitOperations.TrailingZeroCount(other));
                if (!decimalAllowed || (other & (other - 1)) != 0 || (mark != (byte)'.' && mark != (byte)','))
                {
                    return false;
                }
            }
        }

        int n = System.Numerics.BitOperations.PopCount(bits & digits);
        return n > 0 && n >= c.MinLength && n <= c.MaxLength && (c.Codes == null || c.Codes.Contains(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start), length)));
    }

    /// <summary>The element loop of <see cref="PlainSegmentValid"/> for segments the flat check does not take.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private bool PlainSegmentValidLoop(SegmentPlan plan, ulong mask)
    {
        // The tokenizer's invariants hold here: bounds[0..count+1] ascend within the segment's bytes, so no range checks.
        int count = _curBoundCount - 2;
        var checks = plan.Checks;
        if (count > 63 || plan.LastMandatoryPosition > count)
        {
            return false;
        }

        ref int b = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_curBounds), _curBoundsStart);
        int limit = Math.Min(count, checks.Length);
        for (int pos = limit + 1; pos <= count; pos++)
        {
            if (Unsafe.Add(ref b, pos + 1) - 1 - Unsafe.Add(ref b, pos) != 0)
            {
                return false;
            }
        }

        ref byte seg = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_curData), _curDataStart);
        int room = _curData.Length - _curDataStart;
        ref ElementCheck c0 = ref MemoryMarshal.GetArrayDataReference(checks);
        bool decimals = _edifact;
        int flags = _curFlags;
        _plain = (flags & EdiTokenizer.SegmentFlagNotPlain) == 0;
        byte release = (flags & EdiTokenizer.SegmentFlagRelease) != 0 ? _delims.Release : (byte)0;
        ulong present = 0;
        int start = Unsafe.Add(ref b, 1);
        for (int pos = 1; pos <= limit; pos++)
        {
            int next = Unsafe.Add(ref b, pos + 1);
            int length = next - 1 - start;
            ref ElementCheck c = ref Unsafe.Add(ref c0, pos - 1);
            if (length == 0)
            {
                if (c.Mandatory)
                {
                    return false;
                }
            }
            else
            {
                present |= 1UL << pos;

                // The element's component separators, bit 0 = its first byte (a known mask has none from byte 64 on).
                ulong inElement = MaskOf(mask, start, length);
                bool ok = c.Op == QuickOp.Composite
                    ? QuickComposite(ref Unsafe.Add(ref seg, start), length, room - start, in c, decimals, inElement, release)
                    : inElement == 0 && (release != 0 && Has(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start), length), release)
                        ? EscapedTextFits(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref seg, start), length), release, in c)
                        : QuickLeaf(ref Unsafe.Add(ref seg, start), length, room - start, in c, decimals));
                if (!ok)
                {
                    return false;
                }
            }

            start = next;
        }

        return !plan.HasRules || (plan.RuleMasks is { } rules && RulesHold(rules, present));
    }

    /// <summary>
    /// A simple text element with release characters (each escapes the byte after it: the tokenizer's vector pass let no
    /// escaped release character through) fits its length; anything else escaped goes the exact way.
    /// </summary>
    private static bool EscapedTextFits(ReadOnlySpan<byte> raw, byte release, in ElementCheck c)
    {
        if (c.Op != QuickOp.Text)
        {
            return false;
        }

        int n = raw.Length - raw.Count(release);
        return n >= c.MinLength && n <= c.MaxLength;
    }

    /// <summary>The component separator bits of seg[start..start+length) from a segment's mask (none from byte 64 on).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong MaskOf(ulong mask, int start, int length)
        => start >= 64 ? 0 : (mask >> start) & (length >= 64 ? ulong.MaxValue : (1UL << length) - 1);

    /// <summary>
    /// A printable value without separators in it passes its simple element's or component's check: length, code values,
    /// numbers counted inline, dates and times. <paramref name="room"/> is how many bytes the array holds from the value on.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool QuickLeaf(ref byte value, int length, int room, in ElementCheck c, bool decimals)
    {
        switch (c.Op)
        {
            case QuickOp.Text:
                return length >= c.MinLength && length <= c.MaxLength;
            case QuickOp.TextCodes:
                return length >= c.MinLength && length <= c.MaxLength && HasCode(ref value, length, room, in c);
            case QuickOp.Number:
                return QuickNumber(MemoryMarshal.CreateReadOnlySpan(ref value, length), in c, decimals || c.Real);
            case QuickOp.Other:
                return Check(MemoryMarshal.CreateReadOnlySpan(ref value, length), c.Definition) == NoError;
            default:
                return false;
        }
    }

    /// <summary>Code value check of a printable value: one 8-byte read compared with the few code words, else the code set.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool HasCode(ref byte value, int length, int room, in ElementCheck c)
    {
        var words = c.CodeWords;
        if (words == null || room < 8)
        {
            return c.Codes!.Contains(MemoryMarshal.CreateReadOnlySpan(ref value, length));
        }

        if (length > 8)
        {
            return false;
        }

        ulong w = Unsafe.ReadUnaligned<ulong>(ref value) & (ulong.MaxValue >> (64 - (8 * length)));
        foreach (ulong k in words)
        {
            if (k == w)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Every component of a printable composite passes its check and none is missing; <paramref name="separators"/> has a bit
    /// per component separator (bit 0 = the value's first byte).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool QuickComposite(ref byte value, int length, int room, in ElementCheck ed, bool decimals, ulong separators, byte release = 0)
        => FlatComposite(ref value, 0, length, room, in ed, decimals, separators, 0, flat: false, release);

    /// <summary>Every element checked and reported exactly (the quick loops where they apply); out of line.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ValidateElementsExact(EdiSegmentDefinition def)
    {
        var plan = def.Plan;
        var d = _delims;
        var data = CurrentData;
        var bounds = CurrentBounds;
        int count = bounds.Length - 2;
        bool special, hasRelease;
        int flags = _curFlags;
        if ((flags & (EdiTokenizer.SegmentFlagRelease | EdiTokenizer.SegmentFlagUnscanned)) == 0)
        {
            // Flags from the tokenizer's single pass (no release character in the segment).
            special = (flags & EdiTokenizer.SegmentFlagSpecial) != 0;
            hasRelease = false;
            _plain = (flags & EdiTokenizer.SegmentFlagNotPlain) == 0;
        }
        else
        {
            special = data.IndexOfAny(_special) >= 0;
            hasRelease = special && d.Release != 0 && data.IndexOf(d.Release) >= 0;
            _plain = data.IndexOfAnyExcept(PlainAscii) < 0;
        }

        var defs = plan.Elements;
        // Absent trailing elements only matter up to the last mandatory one.
        int n = Math.Max(count, plan.LastMandatoryPosition);
        int first = 1;
        if (GeneralPathOnly)
        {
        }
        else if (!hasRelease && _plain && !_x12Basic && (!special || (d.Repetition == 0 && _curComponentMask >= 0)))
        {
            // The common case (see QuickElements), without the call to ValidateQuick.
            int limit = Math.Min(count, defs.Length);
            QuickElements(plan, data, bounds, limit, special ? (ulong)_curComponentMask : 0, special);
            first = limit + 1;
        }
        else if (!special || d.Repetition == 0 || data.IndexOf(d.Repetition) < 0)
        {
            first = ValidateQuick(plan, data, bounds, Math.Min(count, defs.Length), special, hasRelease ? d.Release : (byte)0);
        }

        if (first <= n)
        {
            ValidateRest(def, defs, data, bounds, count, first, n, special, hasRelease, d);
        }

        if (plan.HasRules && (GeneralPathOnly || plan.RuleMasks == null || !RulesHold(plan.RuleMasks, PresentMask(bounds, count))))
        {
            CheckRules(def, bounds, count);
        }

        if (_x12 && plan.IsHl)
        {
            CheckHierarchy();
        }
    }

    /// <summary>The elements the quick loop left (all of them on the general path) and absent mandatory ones at the end; out of line, so the walk's frame stays small.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ValidateRest(EdiSegmentDefinition def, EdiElementDefinition[] defs, ReadOnlySpan<byte> data, ReadOnlySpan<int> bounds, int count, int first, int n, bool special, bool hasRelease, EdiDelimiters d)
    {
        for (int pos = first; pos <= n; pos++)
        {
            var raw = pos <= count ? data.Slice(bounds[pos], bounds[pos + 1] - 1 - bounds[pos]) : default;
            if (pos > defs.Length)
            {
                if (!raw.IsEmpty)
                {
                    ReportStructure(EdiErrorKind.TooManyElements, def, null, pos, 0, raw);
                }

                continue;
            }

            var ed = defs[pos - 1];
            if (raw.IsEmpty)
            {
                if (ed.Usage == EdiUsage.Mandatory)
                {
                    ReportStructure(EdiErrorKind.MandatoryElementMissing, def, ed, pos, 0, default);
                }

                continue;
            }

            ValidateElementAt(def, ed, pos, raw, special, hasRelease, d);
        }

    }

    /// <summary>Test hook: every element through the general path (the quick loop off), to compare both on the same input.</summary>
    internal bool GeneralPathOnly { get; init; }

    /// <summary>
    /// The common case in one tight loop: a segment without repetition or release characters, checked against the
    /// segment's flattened element checks (composites against their flattened component checks). A value that does not
    /// pass the quick check, or needs the general path (repeating elements, non-ASCII, the X12 basic set), goes through
    /// the general path, which reports it exactly. Returns the first position the general loop still has to look at.
    /// </summary>
    private int ValidateQuick(SegmentPlan plan, ReadOnlySpan<byte> data, ReadOnlySpan<int> bounds, int limit, bool components, byte release)
    {
        if (release == 0 && _plain && !_x12Basic)
        {
            if (!components)
            {
                QuickElements(plan, data, bounds, limit, 0, false);
                return limit + 1;
            }

            if (_curComponentMask >= 0)
            {
                QuickElements(plan, data, bounds, limit, (ulong)_curComponentMask, true);
                return limit + 1;
            }
        }

        var def = plan.Definition;
        var checks = plan.Checks;
        bool plainSegment = _plain;
        byte comp = _delims.Component;
        for (int pos = 1; pos <= limit; pos++)
        {
            int start = bounds[pos];
            int length = bounds[pos + 1] - 1 - start;
            ref readonly var c = ref checks[pos - 1];
            if (length == 0)
            {
                Absent(def, in c, pos);
                continue;
            }

            var raw = data.Slice(start, length);

            // Per element: an escaped value or, in a segment with non-ASCII data, a value that has some goes the general way.
            bool quickText = !_x12Basic && (plainSegment || raw.IndexOfAnyExcept(PlainAscii) < 0);
            bool valid = (release == 0 || !Has(raw, release)) && c.Kind switch
            {
                ElementCheckKind.Text => quickText && QuickText(raw, in c) && (!components || !Has(raw, comp)),
                ElementCheckKind.Other => (!components || !Has(raw, comp)) && Check(raw, c.Definition) == NoError,
                ElementCheckKind.Composite => QuickComposite(raw, in c, components ? comp : (byte)0, quickText),
                _ => false,
            };
            if (!valid)
            {
                ValidateElementAt(def, c.Definition, pos, raw, components, release != 0, _delims);
            }
        }

        return limit + 1;
    }

    /// <summary>
    /// A printable ASCII segment without release or repetition characters: most X12 (no components at all) and most
    /// EDIFACT (read by the tokenizer in one block, its component separators known as the bit mask <paramref name="mask"/>,
    /// so simple elements are checked for stray components and composites split without a byte loop). Each element needs
    /// only its own check; what fails goes through the general path, which reports it.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void QuickElements(SegmentPlan plan, ReadOnlySpan<byte> data, ReadOnlySpan<int> bounds, int limit, ulong mask, bool components)
    {
        var checks = plan.Checks;
        bool decimals = _edifact;
        for (int pos = 1; pos <= limit; pos++)
        {
            int start = bounds[pos];
            int length = bounds[pos + 1] - 1 - start;
            ref readonly var c = ref checks[pos - 1];
            if (length == 0)
            {
                Absent(plan.Definition, in c, pos);
                continue;
            }

            // The element's separators, bit 0 = its first byte (a known mask has none from byte 64 on).
            ulong inElement = MaskOf(mask, start, length);
            var raw = data.Slice(start, length);
            if (!QuickValue(raw, in c, decimals, inElement))
            {
                ValidateElementAt(plan.Definition, c.Definition, pos, raw, components, false, _delims);
            }
        }
    }

    /// <summary>An empty element: an issue when it is mandatory.</summary>
    private void Absent(EdiSegmentDefinition def, in ElementCheck c, int pos)
    {
        if (c.Mandatory)
        {
            ReportStructure(EdiErrorKind.MandatoryElementMissing, def, c.Definition, pos, 0, default);
        }
    }

    /// <summary>
    /// True when a printable ASCII value without release or repetition characters passes its element's check;
    /// <paramref name="components"/> has a bit per component separator in it. False sends it to the general path.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool QuickValue(ReadOnlySpan<byte> raw, in ElementCheck c, bool decimals, ulong components)
    {
        switch (c.Op)
        {
            case QuickOp.Text:
                return components == 0 && raw.Length >= c.MinLength && raw.Length <= c.MaxLength;
            case QuickOp.TextCodes:
                return components == 0 && raw.Length >= c.MinLength && raw.Length <= c.MaxLength && c.Codes!.Contains(raw);
            case QuickOp.Number:
                return components == 0 && QuickNumber(raw, in c, decimals || c.Real);
            case QuickOp.Other:
                return components == 0 && Check(raw, c.Definition) == NoError;
            case QuickOp.Composite:
                return QuickComposite(raw, in c, 0, true, (long)components);
            default:
                return false;
        }
    }

    /// <summary>Exactly when <see cref="Check"/> passes an N / R value: optional sign, digits, at most one decimal mark where allowed, digit count within the length, code values.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool QuickNumber(ReadOnlySpan<byte> raw, in ElementCheck c, bool decimalAllowed)
    {
        int i = raw[0] == (byte)'-' || raw[0] == (byte)'+' ? 1 : 0;
        int digits = 0, marks = 0;
        for (; i < raw.Length; i++)
        {
            byte b = raw[i];
            if ((uint)(b - (byte)'0') <= 9)
            {
                digits++;
            }
            else if (decimalAllowed && (b == (byte)'.' || b == (byte)','))
            {
                marks++;
            }
            else
            {
                return false;
            }
        }

        return digits > 0 && marks <= 1 && digits >= c.MinLength && digits <= c.MaxLength && (c.Codes == null || c.Codes.Contains(raw));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool QuickText(ReadOnlySpan<byte> raw, in ElementCheck c)
        => raw.Length >= c.MinLength && raw.Length <= c.MaxLength && (c.Codes == null || c.Codes.Contains(raw));

    /// <summary>
    /// True when every component of a composite passes its quick check and none is missing (then nothing to report).
    /// The components are split at <paramref name="comp"/> or, when <paramref name="separators"/> is not negative, at its
    /// bits (bit 0 = the value's first byte, from the tokenizer's mask).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool QuickComposite(ReadOnlySpan<byte> raw, in ElementCheck ed, byte comp, bool quickText, long separators = -1)
    {
        var checks = ed.Components;
        ulong bits = (ulong)separators;
        int c = 0;
        int p = 0;
        while (true)
        {
            int end = p;
            if (separators >= 0)
            {
                end = bits == 0 ? raw.Length : System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
            }
            else if (comp != 0)
            {
                while (end < raw.Length && raw[end] != comp)
                {
                    end++;
                }
            }
            else
            {
                end = raw.Length;
            }

            if (c == checks.Length)
            {
                return false;
            }

            ref readonly var cc = ref checks[c++];
            if (end == p)
            {
                if (cc.Mandatory)
                {
                    return false;
                }
            }
            else
            {
                var cv = raw[p..end];
                bool ok = cc.Op switch
                {
                    QuickOp.Text or QuickOp.TextCodes => quickText && QuickText(cv, in cc),
                    QuickOp.Number => QuickNumber(cv, in cc, _edifact || cc.Real),
                    QuickOp.Other => Check(cv, cc.Definition) == NoError,
                    _ => false,
                };
                if (!ok)
                {
                    return false;
                }
            }

            if (end >= raw.Length)
            {
                break;
            }

            p = end + 1;
        }

        return c >= ed.LastMandatoryComponent;
    }

    private void ValidateElementAt(EdiSegmentDefinition def, EdiElementDefinition ed, int pos, ReadOnlySpan<byte> raw, bool special, bool hasRelease, EdiDelimiters d)
    {
        if (special && d.Repetition != 0 && Has(raw, d.Repetition) && NextUnescaped(raw, 0, d.Repetition, hasRelease ? d.Release : (byte)0) < raw.Length)
        {
            ValidateRepeats(def, ed, pos, raw, special, hasRelease, d);
            return;
        }

        if (ed.MaxRepeat > 1)
        {
            _rep = 1;
            ValidateOne(def, ed, pos, raw, special, hasRelease, d);
            _rep = 0;
        }
        else
        {
            ValidateOne(def, ed, pos, raw, special, hasRelease, d);
        }
    }

    /// <summary>Index of the next <paramref name="sep"/> at or after <paramref name="from"/> that is not escaped by <paramref name="release"/>; the length when none.</summary>
    private static int NextUnescaped(ReadOnlySpan<byte> raw, int from, byte sep, byte release)
    {
        if (release == 0)
        {
            int i = raw[from..].IndexOf(sep);
            return i < 0 ? raw.Length : from + i;
        }

        int p = from;
        while (p < raw.Length && raw[p] != sep)
        {
            p += raw[p] == release ? 2 : 1;
        }

        return Math.Min(p, raw.Length);
    }

    /// <summary>A repeating data element: each repetition is validated as the element; more than the definition's max repeat is an error naming the first excess repetition.</summary>
    private void ValidateRepeats(EdiSegmentDefinition def, EdiElementDefinition ed, int pos, ReadOnlySpan<byte> raw, bool special, bool hasRelease, EdiDelimiters d)
    {
        byte release = hasRelease ? d.Release : (byte)0;
        int r = 0;
        int p = 0;
        bool any = false;
        while (true)
        {
            int end = NextUnescaped(raw, p, d.Repetition, release);
            var part = raw[p..end];
            r++;
            _rep = r;
            if (r > ed.MaxRepeat)
            {
                ReportStructure(EdiErrorKind.TooManyRepetitions, def, ed, pos, 0, part);
                break;
            }

            if (!part.IsEmpty)
            {
                any = true;
                ValidateOne(def, ed, pos, part, special, hasRelease, d);
            }

            if (end >= raw.Length)
            {
                break;
            }

            p = end + 1;
        }

        _rep = 0;
        if (!any && ed.Usage == EdiUsage.Mandatory)
        {
            ReportStructure(EdiErrorKind.MandatoryElementMissing, def, ed, pos, 0, default);
        }
    }

    private void ValidateOne(EdiSegmentDefinition def, EdiElementDefinition ed, int pos, ReadOnlySpan<byte> raw, bool special, bool hasRelease, EdiDelimiters d)
    {
        if (ed.Type == EdiDataType.Composite)
        {
            ValidateComposite(def, ed, pos, raw, special, hasRelease, d);
            return;
        }

        if (special && Has(raw, d.Component) && EdiText.CountComponents(raw, d) > 1)
        {
            ReportStructure(EdiErrorKind.TooManyComponents, def, ed, pos, 2, raw);
            return;
        }

        if (hasRelease && Has(raw, d.Release))
        {
            ValidateEscaped(raw, d.Release, ed, def, pos, 0);
        }
        else
        {
            ValidateCore(raw, ed, def, pos, 0);
        }
    }

    /// <summary>Quick check of the syntax notes on a bit mask of the present elements; false sends the segment to <see cref="CheckRules"/>, which reports.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool RulesHold(RuleMask[] rules, ulong present)
    {
        foreach (var r in rules)
        {
            ulong m = present & r.Mask;
            bool broken = r.Kind switch
            {
                'P' => m != 0 && m != r.Mask,
                'R' => m == 0,
                'E' => System.Numerics.BitOperations.PopCount(m) > 1,
                'C' => (present & r.First) != 0 && m != r.Mask,
                'L' => (present & r.First) != 0 && r.Count > 1 && System.Numerics.BitOperations.PopCount(m) == 1,
                _ => false,
            };
            if (broken)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Bit p set when element p (up to 63) is present.</summary>
    private static ulong PresentMask(ReadOnlySpan<int> bounds, int count)
    {
        ulong present = 0;
        int last = Math.Min(count, 63);
        for (int p = 1; p <= last; p++)
        {
            if (bounds[p + 1] - 1 - bounds[p] > 0)
            {
                present |= 1UL << p;
            }
        }

        return present;
    }

    private void CheckRules(EdiSegmentDefinition def, ReadOnlySpan<int> bounds, int count)
    {
        foreach (var r in def.RuleArray)
        {
            int n = r.Positions.Length, present = 0, firstMissing = 0, second = 0;
            foreach (int p in r.Positions)
            {
                bool has = p <= count && bounds[p + 1] - 1 - bounds[p] > 0;
                if (has)
                {
                    present++;
                    if (present == 2)
                    {
                        second = p;
                    }
                }
                else if (firstMissing == 0)
                {
                    firstMissing = p;
                }
            }

            bool first = r.Positions[0] <= count && bounds[r.Positions[0] + 1] - 1 - bounds[r.Positions[0]] > 0;
            int at = r.Kind switch
            {
                'P' when present > 0 && present < n => firstMissing,
                'R' when present == 0 => r.Positions[0],
                'E' when present > 1 => -second,
                'C' when first && present < n => firstMissing,
                'L' when first && present == 1 && n > 1 => r.Positions[1],
                _ => 0,
            };
            if (at != 0)
            {
                ReportRule(def, r, at);
            }
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ReportRule(EdiSegmentDefinition def, EdiSyntaxRule r, int at)
    {
        string note = r.Kind + string.Concat(r.Positions.Select(p => p.ToString("00", System.Globalization.CultureInfo.InvariantCulture)));
        string list = string.Join(", ", r.Positions.Select(p => Where(def.Tag, p, 0)));
        string text = r.Kind switch
        {
            'P' => $"if any of {list} is present, all are required",
            'R' => $"at least one of {list} is required",
            'E' => $"only one of {list} may be present",
            'C' => $"when {Where(def.Tag, r.Positions[0], 0)} is present, all of {list} are required",
            _ => $"when {Where(def.Tag, r.Positions[0], 0)} is present, at least one other of {list} is required",
        };
        int pos = Math.Abs(at);
        var ed = pos <= def.ElementArray.Length ? def.ElementArray[pos - 1] : null;
        ElementIssue(at < 0 ? EdiErrorKind.ExclusionConditionViolated : EdiErrorKind.ConditionalElementMissing, $"syntax note {note} of {def.Tag}: {text}", ed, pos, 0, default);
    }

    private void ValidateComposite(EdiSegmentDefinition def, EdiElementDefinition ed, int pos, ReadOnlySpan<byte> raw, bool special, bool hasRelease, EdiDelimiters d)
    {
        var comps = ed.ComponentArray;
        int c = 0;
        int p = 0;
        bool more = true;
        while (more)
        {
            // next component: raw[p..end)
            int end;
            if (!special)
            {
                end = raw.Length;
            }
            else if (!hasRelease)
            {
                // Components are short: a plain loop beats a vectorized search call here.
                end = p;
                byte comp = d.Component;
                while (end < raw.Length && raw[end] != comp)
                {
                    end++;
                }
            }
            else
            {
                end = p;
                while (end < raw.Length && raw[end] != d.Component)
                {
                    end += raw[end] == d.Release ? 2 : 1;
                }

                end = Math.Min(end, raw.Length);
            }

            more = end < raw.Length;
            var cv = raw[p..end];
            p = end + 1;
            c++;
            if (c > comps.Length)
            {
                ReportStructure(EdiErrorKind.TooManyComponents, def, ed, pos, c, raw);
                return;
            }

            var cd = comps[c - 1];
            if (cv.IsEmpty)
            {
                if (cd.Usage == EdiUsage.Mandatory)
                {
                    ReportStructure(EdiErrorKind.MandatoryElementMissing, def, cd, pos, c, default);
                }

                continue;
            }

            if (hasRelease && Has(cv, d.Release))
            {
                ValidateEscaped(cv, d.Release, cd, def, pos, c);
            }
            else
            {
                ValidateCore(cv, cd, def, pos, c);
            }
        }

        for (c++; c <= comps.Length; c++)
        {
            if (comps[c - 1].Usage == EdiUsage.Mandatory)
            {
                ReportStructure(EdiErrorKind.MandatoryElementMissing, def, comps[c - 1], pos, c, default);
            }
        }
    }

    private void CheckHierarchy()
    {
        _hlIds ??= new HashSet<string>(StringComparer.Ordinal);
        string id = EdiText.Decode(CurrentElement(1), 0, Encoding.ASCII);
        string parent = EdiText.Decode(CurrentElement(2), 0, Encoding.ASCII);
        if (parent.Length > 0 && !_hlIds.Contains(parent) && !Full)
        {
            ElementIssue(EdiErrorKind.InvalidCodeValue, $"HL02 parent '{parent}' does not name an earlier HL01", null, 2, 0, CurrentElement(2));
        }

        if (id.Length > 0 && !_hlIds.Add(id))
        {
            ElementIssue(EdiErrorKind.InvalidCodeValue, $"HL01 '{id}' is not unique in the set", null, 1, 0, CurrentElement(1));
        }
    }

    private void ValidateValue(ReadOnlySpan<byte> raw, EdiElementDefinition ed, EdiSegmentDefinition seg, int pos, int comp)
    {
        byte release = _delims.Release;
        if (release != 0 && raw.IndexOf(release) >= 0)
        {
            ValidateEscaped(raw, release, ed, seg, pos, comp);
            return;
        }

        ValidateCore(raw, ed, seg, pos, comp);
    }

    private void ValidateEscaped(ReadOnlySpan<byte> raw, byte release, EdiElementDefinition ed, EdiSegmentDefinition seg, int pos, int comp)
    {
        var buf = raw.Length <= 256 ? stackalloc byte[256] : new byte[raw.Length];
        ValidateCore(buf[..EdiText.Unescape(raw, release, buf)], ed, seg, pos, comp);
    }

    private const EdiErrorKind NoError = (EdiErrorKind)(-1);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void ValidateCore(ReadOnlySpan<byte> raw, EdiElementDefinition ed, EdiSegmentDefinition seg, int pos, int comp)
    {
        var kind = Check(raw, ed);
        if (kind != NoError)
        {
            ReportValue(kind, raw, ed, seg, pos, comp);
        }
    }

    /// <summary>Type, length and code check of one value; allocation- and string-free.</summary>
    private EdiErrorKind Check(ReadOnlySpan<byte> raw, EdiElementDefinition ed)
    {
        int length;
        switch (ed.Type)
        {
            case EdiDataType.N:
            case EdiDataType.R:
            {
                bool decimalAllowed = ed.Type == EdiDataType.R || _edifact;
                int start = raw.Length > 0 && (raw[0] == (byte)'-' || raw[0] == (byte)'+') ? 1 : 0;
                int digitCount = 0, marks = 0;
                for (int i = start; i < raw.Length; i++)
                {
                    uint c = (uint)(raw[i] - (byte)'0');
                    if (c <= 9)
                    {
                        digitCount++;
                    }
                    else if (decimalAllowed && (raw[i] == (byte)'.' || raw[i] == (byte)','))
                    {
                        marks++;
                    }
                    else
                    {
                        return EdiErrorKind.InvalidCharacter;
                    }
                }

                if (digitCount == 0 || marks > 1)
                {
                    return EdiErrorKind.InvalidCharacter;
                }

                length = digitCount;
                break;
            }

            case EdiDataType.DT:
                if (!IsDate(raw))
                {
                    return EdiErrorKind.InvalidDate;
                }

                length = raw.Length;
                break;
            case EdiDataType.TM:
                if (!IsTime(raw))
                {
                    return EdiErrorKind.InvalidTime;
                }

                length = raw.Length;
                break;
            default:
                if (_plain || raw.IndexOfAnyExcept(PlainAscii) < 0)
                {
                    length = raw.Length;
                }
                else
                {
                    length = CharLength(raw);
                    if (raw.IndexOfAnyInRange((byte)0, (byte)0x1F) >= 0
                        || (_asciiOnly && raw.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0))
                    {
                        return EdiErrorKind.InvalidCharacter;
                    }
                }

                if (_x12Basic && raw.IndexOfAnyExcept(X12Basic) >= 0)
                {
                    return EdiErrorKind.InvalidCharacter;
                }

                if (ed.Type == EdiDataType.A && HasDigit(raw))
                {
                    return EdiErrorKind.InvalidCharacter;
                }

                break;
        }

        if (length < ed.MinLength)
        {
            return EdiErrorKind.ElementTooShort;
        }

        if (length > ed.MaxLength)
        {
            return EdiErrorKind.ElementTooLong;
        }

        if (ed.CodeBytes != null && !ed.CodeBytes.Contains(raw))
        {
            return EdiErrorKind.InvalidCodeValue;
        }

        return NoError;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ReportValue(EdiErrorKind kind, ReadOnlySpan<byte> raw, EdiElementDefinition ed, EdiSegmentDefinition seg, int pos, int comp)
    {
        string where = $"{Where(seg.Tag, pos, comp)} ({ed.Reference})";
        string message = kind switch
        {
            EdiErrorKind.InvalidCharacter => ed.Type switch
            {
                EdiDataType.N or EdiDataType.R => $"{where} must be numeric",
                EdiDataType.A => $"{where} must be alphabetic",
                _ when _x12Basic && raw.IndexOfAnyExcept(X12Basic) is var bad and >= 0 => $"{where} contains '{(char)raw[bad]}' (character {bad + 1}), outside the X12 basic character set",
                _ => $"{where} contains a character not allowed here",
            },
            EdiErrorKind.InvalidDate => $"{where} is not a valid date",
            EdiErrorKind.InvalidTime => $"{where} is not a valid time",
            EdiErrorKind.ElementTooShort => $"{where} is shorter than {ed.MinLength}",
            EdiErrorKind.ElementTooLong => $"{where} is longer than {ed.MaxLength}",
            _ => $"{where} code value is not allowed",
        };
        ElementIssue(kind, message, ed, pos, comp, raw);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ReportStructure(EdiErrorKind kind, EdiSegmentDefinition def, EdiElementDefinition? ed, int pos, int comp, ReadOnlySpan<byte> raw)
    {
        string what = $"{Where(def.Tag, pos, comp)} ({ed?.Reference})";
        string message = kind switch
        {
            EdiErrorKind.TooManyElements => $"{def.Tag} has no element {pos:00}",
            EdiErrorKind.MandatoryElementMissing => comp == 0 ? $"mandatory element {what} is missing" : $"mandatory component {what} is missing",
            EdiErrorKind.TooManyRepetitions => ed?.MaxRepeat > 1 ? $"element {what} repeats more than {ed.MaxRepeat} times" : $"element {what} does not repeat",
            _ => ed?.Type == EdiDataType.Composite ? $"composite {Where(def.Tag, pos, 0)} ({ed.Reference}) has more than {ed.ComponentArray.Length} components" : $"simple element {Where(def.Tag, pos, 0)} ({ed?.Reference}) cannot have components",
        };
        ElementIssue(kind, message, ed, pos, comp, raw);
    }

    private static string Where(string tag, int pos, int comp) => comp == 0 ? $"{tag}{pos:00}" : $"{tag}{pos:00}-{comp}";

    private int CharLength(ReadOnlySpan<byte> raw)
    {
        if (_encoding is UTF8Encoding)
        {
            int n = 0;
            foreach (byte b in raw)
            {
                if ((b & 0xC0) != 0x80)
                {
                    n++;
                }
            }

            return n;
        }

        return raw.Length;
    }

    private static int Num(ReadOnlySpan<byte> s)
    {
        int v = 0;
        foreach (byte b in s)
        {
            uint c = (uint)(b - (byte)'0');
            if (c > 9)
            {
                return -1;
            }

            v = (v * 10) + (int)c;
        }

        return v;
    }

    private static bool IsDate(ReadOnlySpan<byte> v)
    {
        int year, month, day;
        if (v.Length == 8)
        {
            year = Num(v[..4]);
            month = Num(v.Slice(4, 2));
            day = Num(v.Slice(6, 2));
        }
        else if (v.Length == 6)
        {
            year = Num(v[..2]);
            year = year < 0 ? -1 : 2000 + year;
            month = Num(v.Slice(2, 2));
            day = Num(v.Slice(4, 2));
        }
        else
        {
            return false;
        }

        return year > 0 && month is >= 1 and <= 12 && day >= 1 && day <= DateTime.DaysInMonth(year, month);
    }

    private static bool IsTime(ReadOnlySpan<byte> v)
    {
        if (v.Length < 4 || v.Length > 8 || v.Length == 5 || v.IndexOfAnyExcept(NotDigits) >= 0)
        {
            return false;
        }

        int h = Num(v[..2]), m = Num(v.Slice(2, 2));
        int s = v.Length >= 6 ? Num(v.Slice(4, 2)) : 0;
        return h is >= 0 and < 24 && m is >= 0 and < 60 && s is >= 0 and < 60;
    }
}

/// <summary>A loop / segment group (with <see cref="LoopId"/>) or a segment (with <see cref="SegmentIndex"/>) of a transaction set tree.</summary>
public sealed class EdiNode(string? loopId, int segmentIndex)
{
    /// <summary>Loop or segment group id (e.g. N1, PO1, SG25); the message id for the root; null for a segment.</summary>
    public string? LoopId { get; } = loopId;

    /// <summary>Index into <see cref="EdiTransactionSet.Segments"/>, or -1 for a loop.</summary>
    public int SegmentIndex { get; } = segmentIndex;

    public bool IsLoop => SegmentIndex < 0;

    public List<EdiNode> Children { get; } = [];
}
