using System.Collections;
using System.Globalization;
using Jint;
using Jint.Native;
using Jint.Native.Object;

namespace CrmEngine.Rules.Scripting;

/// <summary>
/// Copies plain .NET values into plain JavaScript values and back. Nothing of .NET is ever handed
/// to a script: a dictionary becomes an ordinary object, a list an ordinary array, a date a Date.
/// </summary>
internal static class PlainValues
{
    public const int MaxDepth = 32;
    public const int MaxNodes = 100_000;

    public static JsValue ToJs(Engine engine, object? value, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw new ArgumentException($"The input is nested more than {MaxDepth} levels deep.");
        }

        switch (value)
        {
            case null:
                return JsValue.Null;
            case JsValue js:
                return js;
            case bool b:
                return b ? JsBoolean.True : JsBoolean.False;
            case string s:
                return new JsString(s);
            case int i:
                return JsNumber.Create(i);
            case long l:
                return JsNumber.Create(l);
            case double d:
                return JsNumber.Create(d);
            case float f:
                return JsNumber.Create(f);
            case decimal m:
                return JsNumber.Create((double)m);
            case DateTimeOffset dto:
                return Date(engine, dto.ToUnixTimeMilliseconds());
            case DateTime dt:
                return Date(engine, new DateTimeOffset(dt.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(dt, DateTimeKind.Utc) : dt).ToUnixTimeMilliseconds());
            case DateOnly d:
                return Date(engine, new DateTimeOffset(d.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).ToUnixTimeMilliseconds());
            case Enum e:
                return new JsString(e.ToString());
            case IEnumerable<KeyValuePair<string, object?>> map:
            {
                var o = new JsObject(engine);
                foreach (var (k, v) in map)
                {
                    o.FastSetDataProperty(k, ToJs(engine, v, depth + 1));
                }

                return o;
            }
            case IDictionary dict:
            {
                var o = new JsObject(engine);
                foreach (DictionaryEntry entry in dict)
                {
                    o.FastSetDataProperty(Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? "", ToJs(engine, entry.Value, depth + 1));
                }

                return o;
            }
            case IEnumerable list:
            {
                var items = new List<JsValue>();
                foreach (var item in list)
                {
                    items.Add(ToJs(engine, item, depth + 1));
                }

                return new JsArray(engine, items.ToArray());
            }
            default:
                if (value is IConvertible c && c.GetTypeCode() is >= TypeCode.SByte and <= TypeCode.UInt64)
                {
                    return JsNumber.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture));
                }

                throw new ArgumentException($"A value of type {value.GetType().Name} cannot be given to a script: use plain values (text, numbers, dates, lists, dictionaries).");
        }
    }

    private static JsValue Date(Engine engine, long unixMs) =>
        engine.Construct("Date", [JsNumber.Create(unixMs)]);

    /// <summary>Converts a script value back; getters and proxies run here, so call it under the run's budget.</summary>
    public static object? FromJs(JsValue value)
    {
        var nodes = 0;
        return FromJs(value, 0, ref nodes);
    }

    private static object? FromJs(JsValue value, int depth, ref int nodes)
    {
        if (++nodes > MaxNodes)
        {
            throw new OutputTooLargeException($"the value holds more than {MaxNodes} items");
        }

        if (depth > MaxDepth)
        {
            throw new OutputTooLargeException($"the value is nested more than {MaxDepth} levels deep");
        }

        if (value.IsNull() || value.IsUndefined())
        {
            return null;
        }

        if (value.IsBoolean())
        {
            return value.AsBoolean();
        }

        if (value.IsNumber())
        {
            return value.AsNumber();
        }

        if (value.IsString())
        {
            return value.AsString();
        }

        if (value is JsDate date)
        {
            var ms = date.DateValue;
            return double.IsNaN(ms) ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)ms);
        }

        if (value is JsArray array)
        {
            var length = (uint)Jint.Runtime.TypeConverter.ToNumber(array.Get("length"));
            if (length > MaxNodes)
            {
                throw new OutputTooLargeException($"the array has {length} items");
            }

            var list = new List<object?>((int)length);
            for (uint i = 0; i < length; i++)
            {
                list.Add(FromJs(array.Get(i), depth + 1, ref nodes));
            }

            return list;
        }

        if (value is ObjectInstance obj && !value.IsSymbol())
        {
            if (obj is Jint.Native.Function.Function)
            {
                return null;
            }

            var map = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var key in obj.GetOwnPropertyKeys(Jint.Runtime.Types.String))
            {
                var desc = obj.GetOwnProperty(key);
                if (desc == Jint.Runtime.Descriptors.PropertyDescriptor.Undefined || !desc.Enumerable)
                {
                    continue;
                }

                map[key.ToString()] = FromJs(obj.Get(key), depth + 1, ref nodes);
            }

            return map;
        }

        return value.ToString();
    }
}

/// <summary>The script returned (or logged) more than the engine will copy out.</summary>
internal sealed class OutputTooLargeException : Exception
{
    public OutputTooLargeException(string message) : base(message) { }
    public OutputTooLargeException() { }
    public OutputTooLargeException(string message, Exception inner) : base(message, inner) { }
}
