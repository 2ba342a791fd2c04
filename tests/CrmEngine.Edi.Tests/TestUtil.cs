using System.Text;

namespace CrmEngine.Edi.Tests;

internal static class TestUtil
{
    public static string SamplePath(string name) => Path.Combine(AppContext.BaseDirectory, "samples", name);

    public static byte[] Sample(string name) => File.ReadAllBytes(SamplePath(name));

    public static MemoryStream Stream(string text) => new(Encoding.UTF8.GetBytes(text));

    public static List<(EdiItemKind Kind, string Text)> ReadAll(Stream s)
    {
        var list = new List<(EdiItemKind, string)>();
        using var r = new EdiStreamReader(s);
        EdiItemKind k;
        while ((k = r.Read()) != EdiItemKind.None)
        {
            string text = k switch
            {
                EdiItemKind.TransactionSet => $"{r.TransactionSet!.Id}/{r.TransactionSet.ControlNumber}/{r.TransactionSet.Segments.Count}",
                EdiItemKind.GroupStart or EdiItemKind.GroupEnd => r.Group!.ControlNumber,
                _ => r.Interchange!.ControlNumber,
            };
            list.Add((k, text));
        }

        return list;
    }

    public static string Isa(string control = "000000001", string version = "00401", char elem = '*', char comp = '>', char term = '~', char rep = 'U')
        => $"ISA{elem}00{elem}          {elem}00{elem}          {elem}ZZ{elem}SENDER         {elem}ZZ{elem}RECEIVER       {elem}261124{elem}1200{elem}{rep}{elem}{version}{elem}{control}{elem}0{elem}P{elem}{comp}{term}";
}
