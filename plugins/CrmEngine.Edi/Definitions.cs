using System.Globalization;
using System.Reflection;
using System.Runtime.Intrinsics;

namespace CrmEngine.Edi;

public enum EdiUsage
{
    Mandatory,
    Optional,
}

/// <summary>X12: N (Nn implied decimals), R, ID, AN, DT, TM. EDIFACT: a, n, an.</summary>
public enum EdiDataType
{
    AN,
    ID,
    N,
    R,
    DT,
    TM,
    A,
    Composite,
}

public sealed class EdiElementDefinition
{
    public required int Position { get; init; }

    public required string Reference { get; init; }

    public required EdiUsage Usage { get; init; }

    public required EdiDataType Type { get; init; }

    public int MinLength { get; init; }

    public int MaxLength { get; init; }

    public int ImpliedDecimals { get; init; }

    /// <summary>Most repetitions allowed (X12 from 00402, EDIFACT syntax 4); 1 for a non-repeating element. Written <c>*N</c> (<c>*&gt;1</c> unbounded) in a definition file.</summary>
    public int MaxRepeat { get; init; } = 1;

    /// <summary>Allowed code values, when the mapping relies on them; null means any value.</summary>
    public IReadOnlySet<string>? Codes { get; init; }

    internal EdiElementDefinition[] ComponentArray => _componentArray ??= Components.ToArray();

    private EdiElementDefinition[]? _componentArray;


    internal CodeSet? CodeBytes { get; init; }

    public IReadOnlyList<EdiElementDefinition> Components { get; init; } = [];
}

public sealed class EdiSegmentDefinition
{
    public required string Tag { get; init; }

    public string Name { get; init; } = "";

    public required IReadOnlyList<EdiElementDefinition> Elements { get; init; }

    internal EdiElementDefinition[] ElementArray => _elementArray ??= Elements.ToArray();

    private EdiElementDefinition[]? _elementArray;

    /// <summary>Syntax notes between elements (X12 P/R/E/C/L): kind and 1-based positions.</summary>
    public IReadOnlyList<EdiSyntaxRule> Rules { get; init; } = [];

    internal EdiSyntaxRule[] RuleArray => _ruleArray ??= Rules.ToArray();

    private EdiSyntaxRule[]? _ruleArray;

    /// <summary>The rules as bit masks of element positions (null when a rule names a position above 63).</summary>
    internal RuleMask[]? RuleMasks => _ruleMasksDone ? _ruleMasks : BuildRuleMasks();

    private RuleMask[]? _ruleMasks;
    private bool _ruleMasksDone;

    private RuleMask[]? BuildRuleMasks()
    {
        _ruleMasks = RuleArray.All(r => r.Positions.Length > 0 && r.Positions.All(p => p is > 0 and < 64))
            ? RuleArray.Select(r => new RuleMask(r.Kind, r.Positions.Aggregate(0UL, (m, p) => m | (1UL << p)), 1UL << r.Positions[0], r.Positions.Length)).ToArray()
            : null;
        _ruleMasksDone = true;
        return _ruleMasks;
    }

    internal int PackedTag { get; init; }

    internal bool IsHl => Tag == "HL";

    /// <summary>Everything the validator's quick path needs of this segment, computed once, in plain fields.</summary>
    internal SegmentPlan Plan => _plan ??= new SegmentPlan(this);

    private SegmentPlan? _plan;

    /// <summary>The elements flattened for the validator's quick loop over plain segments.</summary>
    internal ElementCheck[] Checks => _checks ??= ElementArray.Select(e => new ElementCheck(e)).ToArray();

    private ElementCheck[]? _checks;

    /// <summary>Position of the last mandatory element (0 when none): the validator looks no further for missing ones.</summary>
    internal int LastMandatoryPosition
    {
        get
        {
            if (_lastMandatory < 0)
            {
                int last = 0;
                var a = ElementArray;
                for (int i = 0; i < a.Length; i++)
                {
                    if (a[i].Usage == EdiUsage.Mandatory)
                    {
                        last = i + 1;
                    }
                }

                _lastMandatory = last;
            }

            return _lastMandatory;
        }
    }

    private int _lastMandatory = -1;
}

internal enum ElementCheckKind : byte
{
    /// <summary>AN / ID / an: length and code values.</summary>
    Text,

    /// <summary>Numeric, date, time: the full value check.</summary>
    Other,

    /// <summary>Composite that does not repeat: each component by its own check.</summary>
    Composite,

    /// <summary>Repeating or alphabetic element, nested composite: always the general path.</summary>
    General,
}

/// <summary>The quick loop's check of one element, refined from <see cref="ElementCheckKind"/>.</summary>
internal enum QuickOp : byte
{
    /// <summary>AN / ID / an without code values: the length only.</summary>
    Text,

    /// <summary>AN / ID / an with code values.</summary>
    TextCodes,

    /// <summary>X12 N / R, EDIFACT n: digits, sign and decimal mark counted inline.</summary>
    Number,

    /// <summary>Date, time: the full value check.</summary>
    Other,

    Composite,

    /// <summary>Always the general path.</summary>
    General,
}

/// <summary>What the validator needs of an element in one contiguous struct (no pointer chasing in the quick loop).</summary>
internal readonly struct ElementCheck
{
    public ElementCheck(EdiElementDefinition e)
    {
        Kind = e.MaxRepeat > 1 || e.Type == EdiDataType.A ? ElementCheckKind.General
            : e.Type == EdiDataType.Composite ? ElementCheckKind.Composite
            : e.Type is EdiDataType.AN or EdiDataType.ID ? ElementCheckKind.Text
            : ElementCheckKind.Other;
        Mandatory = e.Usage == EdiUsage.Mandatory;
        Op = Kind switch
        {
            ElementCheckKind.Text => e.CodeBytes == null ? QuickOp.Text : QuickOp.TextCodes,
            ElementCheckKind.Other => e.Type is EdiDataType.N or EdiDataType.R ? QuickOp.Number : QuickOp.Other,
            ElementCheckKind.Composite => QuickOp.Composite,
            _ => QuickOp.General,
        };
        Real = e.Type == EdiDataType.R;
        MinLength = e.MinLength;
        MaxLength = e.MaxLength;
        Codes = e.CodeBytes;
        CodeWords = e.CodeBytes?.Words;
        Definition = e;
        if (Kind == ElementCheckKind.Composite)
        {
            Components = e.ComponentArray.Select(c => new ElementCheck(c)).ToArray();
            LastMandatoryComponent = Array.FindLastIndex(e.ComponentArray, c => c.Usage == EdiUsage.Mandatory) + 1;
        }
        else
        {
            Components = [];
        }
    }

    /// <summary>A composite's components, flattened the same way.</summary>
    public ElementCheck[] Components { get; }

    /// <summary>Position of a composite's last mandatory component (0 when none): fewer components present means one is missing.</summary>
    public int LastMandatoryComponent { get; }

    public EdiElementDefinition Definition { get; }

    public ElementCheckKind Kind { get; }

    public QuickOp Op { get; }

    /// <summary>X12 R: a decimal mark is allowed (EDIFACT numbers always allow one).</summary>
    public bool Real { get; }

    public bool Mandatory { get; }

    public int MinLength { get; }

    public int MaxLength { get; }

    public CodeSet? Codes { get; }

    /// <summary><see cref="CodeSet.Words"/> of <see cref="Codes"/> (null when there are none or too many).</summary>
    public ulong[]? CodeWords { get; }
}

internal sealed class SegmentPlan
{
    public SegmentPlan(EdiSegmentDefinition def)
    {
        Definition = def;
        Elements = def.ElementArray;
        Checks = def.Checks;
        LastMandatoryPosition = def.LastMandatoryPosition;
        HasRules = def.RuleArray.Length > 0;
        RuleMasks = def.RuleMasks;
        IsHl = def.IsHl;

        // The flat check's tables (positions 1-16): lengths of text elements, empty beyond the definition, which
        // positions are mandatory and which need a look at their bytes.
        Span<int> min = stackalloc int[16];
        Span<int> max = stackalloc int[16];
        for (int k = 0; k < 16; k++)
        {
            if (k >= Checks.Length)
            {
                continue; // min 0, max 0: must be empty
            }

            ref readonly var c = ref Checks[k];
            bool text = c.Op is QuickOp.Text or QuickOp.TextCodes;
            min[k] = text ? c.MinLength : 0;
            max[k] = text ? c.MaxLength : int.MaxValue;
            if (c.Mandatory)
            {
                MandatoryBits |= 1u << k;
            }

            if (c.Op != QuickOp.Text)
            {
                ContentBits |= 1u << k;
            }

            NeedsDigits |= c.Op == QuickOp.Number || c.Components.Any(cc => cc.Op == QuickOp.Number);
        }

        MinLow = Vector256.Create<int>(min[..8]);
        MaxLow = Vector256.Create<int>(max[..8]);
        MinHigh = Vector256.Create<int>(min[8..]);
        MaxHigh = Vector256.Create<int>(max[8..]);
    }

    /// <summary>Smallest length of positions 1-8 (text elements; 0 for the others and beyond the definition).</summary>
    public readonly Vector256<int> MinLow;

    /// <summary>Largest length of positions 1-8 (int.MaxValue for elements checked by their bytes, 0 beyond the definition).</summary>
    public readonly Vector256<int> MaxLow;

    public readonly Vector256<int> MinHigh;

    public readonly Vector256<int> MaxHigh;

    /// <summary>Bit k: position k + 1 is mandatory.</summary>
    public readonly uint MandatoryBits;

    /// <summary>Bit k: position k + 1 needs more than its length checked (codes, numbers, dates, composites).</summary>
    public readonly uint ContentBits;

    /// <summary>A number element or component is among positions 1-16: the flat check classifies the segment's digits.</summary>
    public readonly bool NeedsDigits;

    public readonly EdiSegmentDefinition Definition;
    public readonly EdiElementDefinition[] Elements;
    public readonly ElementCheck[] Checks;
    public readonly int LastMandatoryPosition;
    public readonly bool HasRules;
    public readonly RuleMask[]? RuleMasks;
    public readonly bool IsHl;
}

/// <summary>A syntax note as bit masks (bit p = element p) for the validator's quick check.</summary>
internal readonly record struct RuleMask(char Kind, ulong Mask, ulong First, int Count);

/// <summary>X12 syntax note: P paired, R at least one, E at most one, C if first then all, L if first then at least one other.</summary>
public sealed record EdiSyntaxRule(char Kind, int[] Positions);

/// <summary>A segment or a loop (segment group) in a transaction set structure.</summary>
public sealed class EdiStructureEntry
{
    public required string Id { get; init; }

    public required EdiUsage Usage { get; init; }

    public required int MaxUse { get; init; }

    /// <summary>Set for a segment entry.</summary>
    public EdiSegmentDefinition? Segment { get; internal set; }

    /// <summary>Set for a loop: its entries, the first being the trigger segment.</summary>
    public IReadOnlyList<EdiStructureEntry>? Children { get; init; }

    internal EdiStructureEntry[]? ChildArray => _childArray ??= Children?.ToArray();

    internal EdiLevel ChildLevel => _childLevel ??= new EdiLevel(ChildArray ?? [], isLoop: true);

    private EdiLevel? _childLevel;

    private EdiStructureEntry[]? _childArray;

    public bool IsLoop => Children != null;

    /// <summary>Packed tag of the segment, or of the loop's trigger segment.</summary>
    public int TriggerTag { get; internal set; }
}

public sealed class EdiMessageDefinition
{
    public required EdiStandard Standard { get; init; }

    public required string Id { get; init; }

    public string Name { get; init; } = "";

    public required IReadOnlyList<string> Versions { get; init; }

    public required IReadOnlyList<EdiStructureEntry> Entries { get; init; }

    internal EdiStructureEntry[] EntryArray => _entryArray ??= Entries.ToArray();

    internal EdiLevel EntryLevel => _entryLevel ??= new EdiLevel(EntryArray, isLoop: false);

    private EdiLevel? _entryLevel;

    private EdiStructureEntry[]? _entryArray;
}

/// <summary>
/// One level of a structure (the message's entries or a loop's) prepared for the validator's walk: the trigger tags,
/// a 64-bit filter of them (most levels are skipped without a search) and, per index, the next mandatory entry.
/// </summary>
internal sealed class EdiLevel
{
    public EdiLevel(EdiStructureEntry[] entries, bool isLoop)
    {
        Entries = entries;
        Tags = entries.Select(e => e.TriggerTag).ToArray();

        // Inside a loop the walk never searches the trigger (entry 0: it starts the next repeat one level up).
        foreach (int t in Tags.Skip(isLoop ? 1 : 0))
        {
            Filter |= FilterBit(t);
        }

        NextMandatory = new int[entries.Length + 1];
        NextMandatory[entries.Length] = entries.Length;
        for (int k = entries.Length - 1; k >= 0; k--)
        {
            NextMandatory[k] = entries[k].Usage == EdiUsage.Mandatory ? k : NextMandatory[k + 1];
        }
    }

    public EdiStructureEntry[] Entries { get; }

    public int[] Tags { get; }

    /// <summary>One bit per trigger tag (hashed): a clear bit means the tag is not at this level.</summary>
    public ulong Filter { get; }

    /// <summary>Index of the first mandatory entry at or after k (the entry count when none).</summary>
    public int[] NextMandatory { get; }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static ulong FilterBit(int tag) => 1UL << (int)(((uint)tag * 0x9E3779B1u) >> 26);
}

/// <summary>Small code list compared as bytes (no string allocation per element).</summary>
internal sealed class CodeSet
{
    private readonly HashSet<ulong> _short = [];
    private ulong[] _few = [];
    private readonly List<byte[]> _long = [];

    public CodeSet(IEnumerable<string> codes)
    {
        foreach (var c in codes)
        {
            var b = System.Text.Encoding.ASCII.GetBytes(c);
            if (b.Length <= 8)
            {
                _short.Add(Pack(b));
            }
            else
            {
                _long.Add(b);
            }
        }

        if (_short.Count <= 16)
        {
            _few = [.. _short];
        }

        // Few short codes: also as little-endian words, zero-padded to 8 bytes, for the validator's plain-value check.
        var all = codes.Select(c => System.Text.Encoding.ASCII.GetBytes(c)).ToList();
        if (_long.Count == 0 && all.Count <= 16)
        {
            Words = all.Select(b =>
            {
                Span<byte> w = stackalloc byte[8];
                w.Clear();
                b.CopyTo(w);
                return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(w);
            }).ToArray();
        }
    }

    /// <summary>
    /// The codes as little-endian words zero-padded to 8 bytes, when there are at most 16 of at most 8 bytes each; else null.
    /// A printable value (no zero byte) read the same way and cut to its length equals a word exactly when it is that code.
    /// </summary>
    public ulong[]? Words { get; }

    private static ulong Pack(ReadOnlySpan<byte> b)
    {
        ulong v = (ulong)b.Length << 60;
        for (int i = 0; i < b.Length; i++)
        {
            v |= (ulong)b[i] << (i * 7);
        }

        return v;
    }

    public bool Contains(ReadOnlySpan<byte> value)
    {
        if (value.Length <= 8)
        {
            // Codes are ASCII and packed 7 bits a byte: a value with a byte above 0x7F could collide with one, and matches none.
            byte any = 0;
            foreach (byte b in value)
            {
                any |= b;
            }

            if (any >= 0x80)
            {
                return false;
            }

            ulong key = Pack(value);
            if (_few.Length > 0 || _short.Count == 0)
            {
                foreach (ulong k in _few)
                {
                    if (k == key)
                    {
                        return true;
                    }
                }

                return false;
            }

            return _short.Contains(key);
        }

        foreach (var b in _long)
        {
            if (value.SequenceEqual(b))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// The definitions the generic validator reads. Loaded from the embedded <c>*.def</c> files
/// (see docs/edi.md for the format); more can be added with <see cref="Load(TextReader, string)"/>.
/// </summary>
public sealed class EdiDefinitions
{
    private readonly Dictionary<(EdiStandard, string Version, string Tag), EdiSegmentDefinition> _segments = [];
    private readonly Dictionary<(EdiStandard, string Version, string Id), EdiMessageDefinition> _messages = [];
    private readonly List<(EdiStandard Standard, List<string> Versions, List<PendingEntry> Roots, string Id, string Name, string Source)> _pending = [];

    private bool _dirty;
    private int _generation;

    /// <summary>Changes whenever the messages are rebuilt (a definition file was loaded).</summary>
    internal int Generation
    {
        get
        {
            Resolve();
            return _generation;
        }
    }

    private static readonly Lazy<EdiDefinitions> DefaultLazy = new(LoadEmbedded);

    public static EdiDefinitions Default => DefaultLazy.Value;

    public IEnumerable<EdiMessageDefinition> Messages
    {
        get
        {
            Resolve();
            return _messages.Values.Distinct();
        }
    }

    public static EdiDefinitions LoadEmbedded()
    {
        var d = new EdiDefinitions();
        var asm = typeof(EdiDefinitions).Assembly;
        foreach (var name in asm.GetManifestResourceNames().Where(n => n.EndsWith(".def", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var s = asm.GetManifestResourceStream(name)!;
            using var r = new StreamReader(s);
            d.Load(r, name);
        }

        d.Resolve();
        return d;
    }

    /// <summary>Adds the definitions of every <c>*.def</c> file in <paramref name="directory"/>.</summary>
    public void LoadDirectory(string directory)
    {
        foreach (var f in Directory.EnumerateFiles(directory, "*.def").Order(StringComparer.Ordinal))
        {
            using var r = File.OpenText(f);
            Load(r, f);
        }

        Resolve();
    }

    public EdiMessageDefinition? FindMessage(EdiStandard standard, string version, string id)
    {
        Resolve();
        return _messages.GetValueOrDefault((standard, version, id));
    }

    public EdiSegmentDefinition? FindSegment(EdiStandard standard, string version, string tag)
        => _segments.GetValueOrDefault((standard, version, tag));

    public bool HasVersion(EdiStandard standard, string version)
    {
        Resolve();
        return _messages.Keys.Any(k => k.Item1 == standard && k.Version == version);
    }

    private sealed class PendingEntry
    {
        public required string Id;
        public required EdiUsage Usage;
        public required int Max;
        public List<PendingEntry>? Children;
        public int Line;
    }

    /// <summary>Reads one definition file. Errors name the source and line.</summary>
    public void Load(TextReader reader, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(reader);
        EdiStandard standard = EdiStandard.X12;
        List<string> versions = [];
        string? segTag = null;
        string segName = "";
        List<EdiElementDefinition>? elements = null;
        List<EdiSyntaxRule>? rules = null;
        List<EdiElementDefinition>? components = null;
        EdiElementDefinition? compositeHead = null;
        Stack<List<PendingEntry>>? stack = null;
        string? line;
        int lineNo = 0;

        void FlushComposite()
        {
            if (compositeHead != null)
            {
                elements!.Add(new EdiElementDefinition
                {
                    Position = compositeHead.Position,
                    Reference = compositeHead.Reference,
                    Usage = compositeHead.Usage,
                    Type = EdiDataType.Composite,
                    MaxRepeat = compositeHead.MaxRepeat,
                    Components = Normalize(components!),
                });
                compositeHead = null;
                components = null;
            }
        }

        void FlushSegment()
        {
            FlushComposite();
            if (segTag != null)
            {
                var def = new EdiSegmentDefinition { Tag = segTag, Name = segName, Elements = Normalize(elements!), Rules = rules?.ToArray() ?? [], PackedTag = EdiTag.Pack(segTag) };
                foreach (var v in versions)
                {
                    _segments[(standard, v, segTag)] = def;
                }

                _dirty = true;

                segTag = null;
            }
        }

        Exception Fail(string msg) => new EdiException($"{sourceName}: line {lineNo}: {msg}");

        while ((line = reader.ReadLine()) != null)
        {
            lineNo++;
            int hash = line.IndexOf('#', StringComparison.Ordinal);
            string text = (hash >= 0 ? line[..hash] : line).Trim();
            if (text.Length == 0)
            {
                continue;
            }

            var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string kw = parts[0];
            switch (kw)
            {
                case "standard":
                    FlushSegment();
                    standard = parts[1].Equals("x12", StringComparison.OrdinalIgnoreCase) ? EdiStandard.X12 : EdiStandard.Edifact;
                    continue;
                case "versions":
                    FlushSegment();
                    versions = parts.Skip(1).ToList();
                    continue;
                case "segment":
                    FlushSegment();
                    stack = null;
                    segTag = parts[1];
                    segName = string.Join(' ', parts.Skip(2));
                    elements = [];
                    rules = null;
                    continue;
                case "message":
                    FlushSegment();
                    stack = new Stack<List<PendingEntry>>();
                    stack.Push([]);
                    _pending.Add((standard, versions.ToList(), stack.Peek(), parts[1], string.Join(' ', parts.Skip(2)), sourceName));
                    _dirty = true;
                    continue;
                case "loop" or "group":
                {
                    if (stack == null)
                    {
                        throw Fail("loop outside a message");
                    }

                    var e = new PendingEntry { Id = parts[1], Usage = ParseUsage(parts[2]), Max = ParseMax(parts[3]), Children = [], Line = lineNo };
                    stack.Peek().Add(e);
                    stack.Push(e.Children);
                    continue;
                }

                case "end":
                    if (stack == null || stack.Count < 2)
                    {
                        throw Fail("'end' without a loop");
                    }

                    stack.Pop();
                    continue;
                case "endmessage":
                    stack = null;
                    continue;
            }

            if (segTag != null && elements != null && stack == null)
            {
                // element or component line
                try
                {
                    if (kw == "rule")
                    {
                        FlushComposite();
                        if (parts.Length < 4 || parts[1].Length != 1 || !"PRECL".Contains(parts[1][0], StringComparison.Ordinal))
                        {
                            throw Fail("expected 'rule P|R|E|C|L <position> <position>...'");
                        }

                        (rules ??= []).Add(new EdiSyntaxRule(parts[1][0], parts.Skip(2).Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray()));
                        continue;
                    }

                    if (kw.StartsWith('.'))
                    {
                        if (compositeHead == null)
                        {
                            throw Fail("component line outside a composite");
                        }

                        components!.Add(ParseElement(int.Parse(kw[1..], CultureInfo.InvariantCulture), parts, 1));
                        continue;
                    }

                    FlushComposite();
                    int pos = int.Parse(kw, CultureInfo.InvariantCulture);
                    if (parts.Length >= 4 && parts[3] == "C")
                    {
                        compositeHead = new EdiElementDefinition { Position = pos, Reference = parts[1], Usage = ParseUsage(parts[2]), Type = EdiDataType.Composite, MaxRepeat = parts.Length >= 5 && parts[4].StartsWith('*') ? ParseRepeat(parts[4]) : 1 };
                        components = [];
                        continue;
                    }

                    elements.Add(ParseElement(pos, parts, 1));
                }
                catch (FormatException ex)
                {
                    throw Fail(ex.Message);
                }

                continue;
            }

            if (stack != null)
            {
                if (parts.Length < 3)
                {
                    throw Fail($"expected 'TAG usage max' but found '{text}'");
                }

                stack.Peek().Add(new PendingEntry { Id = kw, Usage = ParseUsage(parts[1]), Max = ParseMax(parts[2]), Line = lineNo });
                continue;
            }

            throw Fail($"unexpected line '{text}'");
        }

        FlushSegment();
    }

    /// <summary>Orders by position and fills skipped positions with "any value" placeholders, so position n is index n-1.</summary>
    private static EdiElementDefinition[] Normalize(List<EdiElementDefinition> list)
    {
        int max = list.Count == 0 ? 0 : list.Max(e => e.Position);
        var result = new EdiElementDefinition[max];
        foreach (var e in list)
        {
            result[e.Position - 1] = e;
        }

        for (int i = 0; i < max; i++)
        {
            result[i] ??= new EdiElementDefinition { Position = i + 1, Reference = "", Usage = EdiUsage.Optional, Type = EdiDataType.AN, MinLength = 0, MaxLength = int.MaxValue };
        }

        return result;
    }

    private static EdiUsage ParseUsage(string s) => s switch
    {
        "M" or "R" => EdiUsage.Mandatory,
        "O" or "C" or "X" or "S" or "N" => EdiUsage.Optional,
        _ => throw new FormatException($"usage must be M, O, C or X, not '{s}'"),
    };

    private static int ParseRepeat(string s)
    {
        int r = ParseMax(s[1..]);
        return r >= 1 ? r : throw new FormatException($"repeat count must be at least 1, not '{s}'");
    }

    private static int ParseMax(string s) => s.StartsWith('>') ? int.MaxValue : int.Parse(s, CultureInfo.InvariantCulture);

    // "<ref> <usage> <format> [<min/max>] [codes...]" where format is X12 "AN 1/35" / "N2 1/15" or EDIFACT "an..35" / "n3".
    private static EdiElementDefinition ParseElement(int position, string[] parts, int start)
    {
        string reference = parts[start];
        var usage = ParseUsage(parts[start + 1]);
        string fmt = parts[start + 2];
        int next = start + 3;
        EdiDataType type;
        int min, max, implied = 0;
        if (fmt.Length > 0 && char.IsLower(fmt[0]))
        {
            int i = 0;
            while (i < fmt.Length && char.IsLetter(fmt[i]))
            {
                i++;
            }

            string t = fmt[..i];
            type = t switch { "a" => EdiDataType.A, "n" => EdiDataType.N, "an" => EdiDataType.AN, _ => throw new FormatException($"unknown EDIFACT format '{fmt}'") };
            string rest = fmt[i..];
            if (rest.StartsWith("..", StringComparison.Ordinal))
            {
                min = 1;
                max = int.Parse(rest[2..], CultureInfo.InvariantCulture);
            }
            else
            {
                min = max = int.Parse(rest, CultureInfo.InvariantCulture);
            }
        }
        else
        {
            if (fmt.Length == 2 && fmt[0] == 'N' && char.IsDigit(fmt[1]))
            {
                type = EdiDataType.N;
                implied = fmt[1] - '0';
            }
            else
            {
                type = fmt switch
                {
                    "AN" => EdiDataType.AN,
                    "ID" => EdiDataType.ID,
                    "N" => EdiDataType.N,
                    "R" => EdiDataType.R,
                    "DT" => EdiDataType.DT,
                    "TM" => EdiDataType.TM,
                    _ => throw new FormatException($"unknown X12 type '{fmt}'"),
                };
            }

            var mm = parts[next++].Split('/');
            min = int.Parse(mm[0], CultureInfo.InvariantCulture);
            max = int.Parse(mm[1], CultureInfo.InvariantCulture);
        }

        int repeat = 1;
        var rest2 = parts.Skip(next).ToList();
        int star = rest2.FindIndex(t => t.Length > 1 && t[0] == '*');
        if (star >= 0)
        {
            repeat = ParseRepeat(rest2[star]);
            rest2.RemoveAt(star);
        }

        string[] codes = rest2.ToArray();
        return new EdiElementDefinition
        {
            Position = position,
            Reference = reference,
            Usage = usage,
            Type = type,
            MinLength = min,
            MaxLength = max,
            ImpliedDecimals = implied,
            MaxRepeat = repeat,
            Codes = codes.Length > 0 ? codes.ToHashSet(StringComparer.Ordinal) : null,
            CodeBytes = codes.Length > 0 ? new CodeSet(codes) : null,
        };
    }

    private void Resolve()
    {
        // Messages are (re)built from every structure loaded so far, so a later file that redefines a
        // segment (e.g. a partner guide allowing repetitions) applies to messages loaded before it.
        if (!_dirty)
        {
            return;
        }

        foreach (var (standard, versions, roots, id, name, source) in _pending)
        {
            foreach (var v in versions)
            {
                var entries = roots.Select(e => Build(e, standard, v, source)).ToArray();
                _messages[(standard, v, id)] = new EdiMessageDefinition { Standard = standard, Id = id, Name = name, Versions = versions, Entries = entries };
            }
        }

        _dirty = false;
        _generation++;
    }

    private EdiStructureEntry Build(PendingEntry e, EdiStandard standard, string version, string source)
    {
        if (e.Children != null)
        {
            if (e.Children.Count == 0)
            {
                throw new EdiException($"{source}: line {e.Line}: loop {e.Id} is empty");
            }

            var children = e.Children.Select(c => Build(c, standard, version, source)).ToArray();
            return new EdiStructureEntry { Id = e.Id, Usage = e.Usage, MaxUse = e.Max, Children = children, TriggerTag = children[0].TriggerTag };
        }

        var seg = FindSegment(standard, version, e.Id)
            ?? throw new EdiException($"{source}: line {e.Line}: segment {e.Id} is not defined for {standard} {version}");
        return new EdiStructureEntry { Id = e.Id, Usage = e.Usage, MaxUse = e.Max, Segment = seg, TriggerTag = seg.PackedTag };
    }
}
