namespace CrmEngine.Edi;

public enum EdiAckStatus
{
    Accepted,
    AcceptedWithErrors,
    PartiallyAccepted,
    Rejected,
}

public sealed class EdiSetResult
{
    public required string Id { get; init; }

    public required string ControlNumber { get; init; }

    public required string Version { get; init; }

    public string Implementation { get; init; } = "";

    public long ByteOffset { get; init; }

    public int Line { get; init; }

    public int SegmentCount { get; init; }

    public required IReadOnlyList<EdiIssue> Issues { get; init; }

    public EdiAckStatus Status { get; init; }
}

public sealed class EdiGroupResult
{
    public required EdiGroup Header { get; init; }

    public List<EdiSetResult> Sets { get; } = [];

    public int SetCount { get; internal set; }

    public int AcceptedCount { get; internal set; }

    public IReadOnlyList<EdiIssue> Issues => Header.Issues;

    public EdiAckStatus Status { get; internal set; }
}

public sealed class EdiInterchangeResult
{
    public required EdiInterchange Header { get; init; }

    public List<EdiGroupResult> Groups { get; } = [];

    public IReadOnlyList<EdiIssue> Issues => Header.Issues;

    public EdiAckStatus Status { get; internal set; }
}

/// <summary>Everything validation found in one file, structured as the acknowledgements need it.</summary>
public sealed class EdiValidationReport
{
    public List<EdiInterchangeResult> Interchanges { get; } = [];

    public int SetCount { get; internal set; }

    /// <summary>True when more sets were read than <see cref="EdiValidationOptions.MaxRetainedSets"/>; the rest were counted only.</summary>
    public bool Truncated { get; internal set; }

    public IEnumerable<EdiIssue> AllIssues =>
        Interchanges.SelectMany(i => i.Issues.Concat(i.Groups.SelectMany(g => g.Issues.Concat(g.Sets.SelectMany(s => s.Issues)))));

    public bool HasErrors => AllIssues.Any();
}

public sealed class EdiValidationOptions
{
    public EdiReaderOptions Reader { get; init; } = EdiReaderOptions.Default;

    public EdiDefinitions? Definitions { get; init; }

    /// <summary>The partner uses the X12 basic character set: other characters in X12 data are InvalidCharacter (AK403 6).</summary>
    public bool X12BasicCharacterSet { get; init; }

    /// <summary>Sets kept with their details in the report; beyond this only counts are kept (bounded memory on huge files).</summary>
    public int MaxRetainedSets { get; init; } = 100_000;

    /// <summary>Kinds that leave a set "accepted with errors" rather than rejected.</summary>
    public IReadOnlySet<EdiErrorKind> TolerableKinds { get; init; } = new HashSet<EdiErrorKind>
    {
        EdiErrorKind.ElementTooLong,
        EdiErrorKind.ElementTooShort,
        EdiErrorKind.InvalidCodeValue,
        EdiErrorKind.TooManyElements,
        EdiErrorKind.InvalidCharacter,
        EdiErrorKind.UnexpectedSegment,
        EdiErrorKind.SegmentNotInSet,
        EdiErrorKind.UnrecognizedSegment,
    };
}

/// <summary>Reads a whole stream, validating envelopes and content, and builds the report.</summary>
public static class EdiValidation
{
    /// <summary>
    /// Validates every transaction set in <paramref name="stream"/>. <paramref name="onSet"/> sees each
    /// set (with its issues) while its segments are still available, e.g. to build a typed document.
    /// Throws <see cref="EdiException"/> only for unreadable input.
    /// </summary>
    public static EdiValidationReport Validate(Stream stream, EdiValidationOptions? options = null, Action<EdiTransactionSet>? onSet = null)
    {
        options ??= new EdiValidationOptions();
        var validator = new EdiValidator(options.Definitions) { X12BasicCharacterSet = options.X12BasicCharacterSet };
        var report = new EdiValidationReport();
        // Each set is validated while it is read (one pass); its segments are kept only for onSet.
        using var reader = new EdiStreamReader(stream, options.Reader) { InlineValidator = validator, KeepSegments = onSet != null };
        EdiInterchangeResult? ir = null;
        EdiGroupResult? gr = null;
        EdiItemKind kind;
        while ((kind = reader.Read()) != EdiItemKind.None)
        {
            switch (kind)
            {
                case EdiItemKind.InterchangeStart:
                    ir = new EdiInterchangeResult { Header = reader.Interchange! };
                    report.Interchanges.Add(ir);
                    break;
                case EdiItemKind.GroupStart:
                    gr = new EdiGroupResult { Header = reader.Group! };
                    ir!.Groups.Add(gr);
                    break;
                case EdiItemKind.TransactionSet:
                {
                    var set = reader.TransactionSet!;
                    onSet?.Invoke(set);
                    var status = StatusOf(set.Issues, options);
                    gr!.SetCount++;
                    if (status != EdiAckStatus.Rejected)
                    {
                        gr.AcceptedCount++;
                    }

                    report.SetCount++;
                    if (report.SetCount <= options.MaxRetainedSets || set.Issues.Count > 0)
                    {
                        gr.Sets.Add(new EdiSetResult
                        {
                            Id = set.Id,
                            ControlNumber = set.ControlNumber,
                            Version = set.Version,
                            Implementation = set.Implementation,
                            ByteOffset = set.ByteOffset,
                            Line = set.Line,
                            SegmentCount = set.SegmentsRead,
                            Issues = set.Issues,
                            Status = status,
                        });
                    }
                    else
                    {
                        report.Truncated = true;
                    }

                    break;
                }

                case EdiItemKind.GroupEnd:
                    gr!.Status = GroupStatus(gr);
                    break;
                case EdiItemKind.InterchangeEnd:
                    ir!.Status = ir.Issues.Count > 0 ? EdiAckStatus.Rejected
                        : ir.Groups.All(g => g.Status == EdiAckStatus.Accepted) ? EdiAckStatus.Accepted
                        : ir.Groups.All(g => g.Status == EdiAckStatus.Rejected) && ir.Groups.Count > 0 ? EdiAckStatus.Rejected
                        : EdiAckStatus.AcceptedWithErrors;
                    break;
            }
        }

        return report;
    }

    public static EdiValidationReport ValidateFile(string path, EdiValidationOptions? options = null, Action<EdiTransactionSet>? onSet = null)
    {
        options ??= new EdiValidationOptions();
        var withName = new EdiValidationOptions
        {
            Definitions = options.Definitions,
            X12BasicCharacterSet = options.X12BasicCharacterSet,
            MaxRetainedSets = options.MaxRetainedSets,
            TolerableKinds = options.TolerableKinds,
            Reader = new EdiReaderOptions
            {
                SourceName = options.Reader.SourceName ?? path,
                MaxSegmentLength = options.Reader.MaxSegmentLength,
                MaxElementsPerSegment = options.Reader.MaxElementsPerSegment,
                MaxSegmentsPerSet = options.Reader.MaxSegmentsPerSet,
                BufferSize = options.Reader.BufferSize,
            },
        };
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        return Validate(fs, withName, onSet);
    }

    internal static EdiAckStatus StatusOf(IReadOnlyList<EdiIssue> issues, EdiValidationOptions options)
    {
        if (issues.Count == 0)
        {
            return EdiAckStatus.Accepted;
        }

        foreach (var i in issues)
        {
            if (!options.TolerableKinds.Contains(i.Kind))
            {
                return EdiAckStatus.Rejected;
            }
        }

        return EdiAckStatus.AcceptedWithErrors;
    }

    private static EdiAckStatus GroupStatus(EdiGroupResult g)
    {
        if (g.Issues.Count > 0 || g.SetCount == 0 || g.AcceptedCount == 0)
        {
            return EdiAckStatus.Rejected;
        }

        if (g.AcceptedCount < g.SetCount)
        {
            return EdiAckStatus.PartiallyAccepted;
        }

        return g.Sets.Exists(s => s.Status == EdiAckStatus.AcceptedWithErrors) ? EdiAckStatus.AcceptedWithErrors : EdiAckStatus.Accepted;
    }
}
